import test from 'ava';
import { ConfChangeRejectedError, MemoryStorage, RawNode, type Message } from '../../src/raft/index.ts';

const msg = (m: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message => ({
  logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m,
});

test('refusals that clear by themselves are marked transient; refusals that need the caller to change the request are not', (t) => {
  const storage = new MemoryStorage({ voters: ['a', 'b', 'c'], learners: [] });
  const a = new RawNode({ id: 'a', electionTicks: 10, heartbeatTicks: 1, random: () => 0 }, storage);
  const persist = () => {
    const rd = a.ready();
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    a.advance(rd);
  };
  a.campaign();
  persist();
  a.step(msg({ type: 'voteResp', from: 'b', to: 'a', term: 1 }));
  persist();
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
