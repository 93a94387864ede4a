import test from 'ava';
import { MemoryStorage, RawNode, type Message, type Ready } from '../../src/raft/index.ts';

const message = (m: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message => ({
  logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m,
});

function persist(node: RawNode, storage: MemoryStorage): Ready {
  const rd = node.ready();
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  node.advance(rd);
  return rd;
}

test('only a leader whose term and vote are unchanged may send before persisting; candidates and followers persist first', (t) => {
  const voters = ['a', 'b', 'c'];
  const storageA = new MemoryStorage({ voters, learners: [] });
  const a = new RawNode({ id: 'a', electionTicks: 10, heartbeatTicks: 1, random: () => 0 }, storageA);
  a.campaign();
  const voteReady = persist(a, storageA);
  t.true(voteReady.messages.some((m) => m.type === 'vote'));
  t.false(voteReady.sendBeforePersist, 'vote requests must follow the persisted self-vote');

  a.step(message({ type: 'voteResp', from: 'b', to: 'a', term: 1 }));
  const leaderReady = persist(a, storageA);
  t.is(a.status().role, 'leader');
  t.true(leaderReady.entries.length > 0 && leaderReady.messages.some((m) => m.type === 'app'));
  t.true(leaderReady.sendBeforePersist, "the leader's appends may overlap its own fsync");

  // A follower acknowledging entries must have them on disk first.
  const storageB = new MemoryStorage({ voters, learners: [] });
  const b = new RawNode({ id: 'b', electionTicks: 10, heartbeatTicks: 1, random: () => 0 }, storageB);
  for (const m of leaderReady.messages.filter((m) => m.to === 'b')) b.step(m);
  const followerReady = b.ready();
  t.true(followerReady.messages.some((m) => m.type === 'appResp' && !m.reject));
  t.false(followerReady.sendBeforePersist);
});
