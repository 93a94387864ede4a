import test from 'ava';
import { message, newNode, persist } from './core-harness.js';

test('only a leader whose term and vote are unchanged may send before persisting; candidates and followers persist first', (t) => {
  const { node: a, storage: storageA } = newNode('a');
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
  const { node: b } = newNode('b');
  for (const m of leaderReady.messages.filter((m) => m.to === 'b')) b.step(m);
  const followerReady = b.ready();
  t.true(followerReady.messages.some((m) => m.type === 'appResp' && !m.reject));
  t.false(followerReady.sendBeforePersist);
});
