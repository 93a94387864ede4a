// A follower's heartbeat answers may skip the wait for its outstanding write (RawNode.
// takeHeartbeatResponses), but only when they depend on nothing that write makes durable.
import test from 'ava';
import { message, newNode, persist } from './core-harness.js';

const entry = (index: number) => ({ index, term: 1, type: 'normal' as const, data: new Uint8Array([index]) });

/** Follower b of leader a in term 1, durable, with a Ready of new entries still being persisted. */
function followerMidSave() {
  const { node: b, storage } = newNode('b', { checkQuorum: true, preVote: true });
  b.step(message({ type: 'heartbeat', from: 'a', to: 'b', term: 1 }));
  b.step(message({ type: 'app', from: 'a', to: 'b', term: 1, index: 0, logTerm: 0, entries: [entry(1)] }));
  persist(b, storage); // term 1 and the first entry (which ends 'pristine') are durable
  b.step(message({ type: 'app', from: 'a', to: 'b', term: 1, index: 1, logTerm: 1, entries: [entry(2)] }));
  const outstanding = b.ready(); // its fsync is slow: not advanced yet
  return { b, storage, outstanding };
}

test('a follower answers a heartbeat while its write is outstanding; its append answer still waits for the write', (t) => {
  const { b, outstanding } = followerMidSave();
  t.true(
    outstanding.messages.some((m) => m.type === 'appResp'),
    'the append answer is in the outstanding Ready',
  );
  b.step(message({ type: 'heartbeat', from: 'a', to: 'b', term: 1, index: 77, context: 'read-9' }));
  const early = b.takeHeartbeatResponses();
  t.is(early.length, 1);
  t.like(early[0], { type: 'heartbeatResp', from: 'b', to: 'a', term: 1, index: 77, reject: false });
  t.is(early[0]!.context, 'read-9', 'the ReadIndex context is echoed');
  t.deepEqual(b.takeHeartbeatResponses(), [], 'taken once');
  b.advance(outstanding);
  t.false(
    b.ready().messages.some((m) => m.type === 'heartbeatResp'),
    'not sent a second time in the next Ready',
  );
});

test('an answer that names a term not yet durable, or comes from a rebuilding node, waits for the write', (t) => {
  // A heartbeat of a newer term: the follower adopts term 2, which is not durable yet.
  const { b, outstanding } = followerMidSave();
  b.step(message({ type: 'heartbeat', from: 'c', to: 'b', term: 2 }));
  t.deepEqual(b.takeHeartbeatResponses(), [], 'term 2 is not durable: the answer waits');
  b.advance(outstanding);
  const next = b.ready();
  t.true(
    next.messages.some((m) => m.type === 'heartbeatResp' && m.term === 2),
    'it goes out with the Ready that persists term 2',
  );
  t.is(next.hardState?.term, 2);

  // A node with no Raft state hearing from a cluster with history rebuilds: its answers vouch for nothing and wait.
  const { node: fresh } = newNode('c', { checkQuorum: true, preVote: true });
  fresh.step(message({ type: 'heartbeat', from: 'a', to: 'c', term: 3, commit: 5 }));
  t.deepEqual(fresh.takeHeartbeatResponses(), []);
  t.true(fresh.ready().messages.some((m) => m.type === 'heartbeatResp' && m.reject));

  // Leaders and candidates take nothing here.
  const { node: a } = newNode('a');
  a.campaign();
  t.deepEqual(a.takeHeartbeatResponses(), []);
});
