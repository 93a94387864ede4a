import test from 'ava';
import { ConfChangeRejectedError } from '../../src/raft/index.js';
import { electedLeader, message as msg } from './core-harness.js';

test('refusals that clear by themselves are marked transient; refusals that need the caller to change the request are not', (t) => {
  const { node: a, persist } = electedLeader();
  t.is(a.status().role, 'leader');

  // The no-op of the new term is not committed yet.
  const early = t.throws(() => a.proposeConfChange({ type: 'addLearner', nodeId: 'd' }), { instanceOf: ConfChangeRejectedError });
  t.true(early?.transient);

  a.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 1 }));
  persist();
  t.is(a.status().commit, 1);
  const duplicate = t.throws(() => a.proposeConfChange({ type: 'addVoter', nodeId: 'b' }), { instanceOf: ConfChangeRejectedError });
  t.false(duplicate?.transient, 'b is already a voter: retrying cannot help');

  a.proposeConfChange({ type: 'addLearner', nodeId: 'd' });
  persist();
  const pending = t.throws(() => a.proposeConfChange({ type: 'addLearner', nodeId: 'e' }), { instanceOf: ConfChangeRejectedError });
  t.true(pending?.transient, 'the previous change is not applied yet');
});
