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
  // A brand-new node that wins leaves 'pristine': its first appends wait until that is durable, or
  // a crash in its first fsync would restart it pristine beside a follower already holding its
  // entry, proof of a history it would think it lost (seed 4902 of the simulator: no leader ever).
  t.is(voteReady.hardState?.recovery, 'pristine');
  t.is(leaderReady.hardState?.recovery, undefined);
  t.false(leaderReady.sendBeforePersist, "a pristine leader's first appends follow the durable end of 'pristine'");
  a.step(message({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 1 }));
  a.propose(new Uint8Array([1]));
  const steadyReady = persist(a, storageA);
  t.true(steadyReady.entries.length > 0 && steadyReady.messages.some((m) => m.type === 'app'));
  t.true(steadyReady.sendBeforePersist, "the leader's appends may overlap its own fsync");

  // A follower acknowledging entries must have them on disk first.
  const { node: b } = newNode('b');
  for (const m of [...leaderReady.messages, ...steadyReady.messages].filter((m) => m.to === 'b')) b.step(m);
  const followerReady = b.ready();
  t.true(followerReady.messages.some((m) => m.type === 'appResp' && !m.reject));
  t.false(followerReady.sendBeforePersist);
});

test('a refused (pre-)vote names the leader the voter follows in its term', (t) => {
  const { node: b, storage: storageB } = newNode('b', { checkQuorum: true, preVote: true });
  b.step(message({ type: 'heartbeat', from: 'a', to: 'b', term: 1 }));
  persist(b, storageB);
  t.is(b.status().leaderId, 'a');
  // A pre-vote from a lagging node while b hears from its leader: refused, naming a.
  b.step(message({ type: 'preVote', from: 'c', to: 'b', term: 2, index: 0, logTerm: 0 }));
  const inLease = persist(b, storageB).messages.find((m) => m.type === 'preVoteResp');
  t.truthy(inLease);
  t.true(inLease?.reject);
  t.is(inLease?.term, 1, "answered at b's own term, which the candidate's pre-vote round already has");
  t.is(inLease?.leaderHint, 'a');
  // A pre-vote for b's own term (the candidate is no further along): refused, naming a.
  b.step(message({ type: 'preVote', from: 'c', to: 'b', term: 1, index: 0, logTerm: 0 }));
  const sameTerm = persist(b, storageB).messages.find((m) => m.type === 'preVoteResp');
  t.true(sameTerm?.reject);
  t.is(sameTerm?.leaderHint, 'a');
});
