import test from 'ava';
import { UncommittedLimitError } from '../../src/raft/index.js';
import { electedLeader, message } from './core-harness.js';

// A leader whose followers stopped answering must not grow its log without bound.
test('a leader cut off from its followers refuses proposals beyond maxUncommittedEntries, and accepts again once they commit', (t) => {
  const { node: leader, persist } = electedLeader({ maxUncommittedEntries: 5 });
  t.is(leader.status().role, 'leader');
  // The no-op (index 1) is uncommitted too: 4 more proposals reach the limit of 5.
  for (let i = 0; i < 4; i++) leader.propose(new Uint8Array([i]));
  const error = t.throws(() => leader.propose(new Uint8Array([9])), { instanceOf: UncommittedLimitError });
  t.is(error?.limit, 5);
  t.is(leader.status().lastIndex, 5, 'the refused proposal was not appended');
  persist();
  // b acknowledges everything: the entries commit and proposals are accepted again.
  leader.step(message({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 5 }));
  t.is(leader.status().commit, 5);
  t.deepEqual(leader.propose(new Uint8Array([10])), { term: 1, index: 6 });
});
