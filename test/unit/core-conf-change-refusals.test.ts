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

test('a learner is promoted only once it is in sync: reachable, not rebuilding, holding nine tenths of the committed log', (t) => {
  const { node: a, persist } = electedLeader();
  a.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 1 }));
  persist();
  a.proposeConfChange({ type: 'addLearner', nodeId: 'd' });
  persist();
  a.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 2 }));
  persist();
  t.deepEqual(a.status().conf.learners, ['d']);
  for (let i = 0; i < 8; i++) a.propose(new Uint8Array([i]));
  persist();
  a.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 10 }));
  persist();
  t.is(a.status().commit, 10);

  // d has never answered: promoting it would add a voter that cannot vote.
  const silent = t.throws(() => a.proposeConfChange({ type: 'addVoter', nodeId: 'd' }), { instanceOf: ConfChangeRejectedError });
  t.true(silent?.transient, 'the learner may still catch up: retrying is right');
  t.regex(silent?.message ?? '', /learner d is not in sync .*has not answered/);

  // It answers, far behind: still refused, with how far it got.
  a.step(msg({ type: 'appResp', from: 'd', to: 'a', term: 1, index: 2 }));
  const behind = t.throws(() => a.proposeConfChange({ type: 'addVoter', nodeId: 'd' }), { instanceOf: ConfChangeRejectedError });
  t.regex(behind?.message ?? '', /holds 2 of 10 committed entries/);

  // It says it is rebuilding (a heartbeat answer with reject): refused whatever its match.
  a.step(msg({ type: 'appResp', from: 'd', to: 'a', term: 1, index: 10 }));
  a.step(msg({ type: 'heartbeatResp', from: 'd', to: 'a', term: 1, reject: true, rejectHint: 10 }));
  const rebuilding = t.throws(() => a.proposeConfChange({ type: 'addVoter', nodeId: 'd' }), { instanceOf: ConfChangeRejectedError });
  t.regex(rebuilding?.message ?? '', /rebuilding/);

  // Caught up and voting again: promoted.
  a.step(msg({ type: 'heartbeatResp', from: 'd', to: 'a', term: 1 }));
  t.notThrows(() => a.proposeConfChange({ type: 'addVoter', nodeId: 'd' }));
  persist();
  a.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 11 }));
  persist();
  t.deepEqual(a.status().conf.voters.sort(), ['a', 'b', 'c', 'd']);
});
