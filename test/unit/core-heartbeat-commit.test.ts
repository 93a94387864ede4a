import test from 'ava';
import { decodeMessages, encodeMessages } from '../../src/transport/codec.js';
import { electedLeader, message as msg } from './core-harness.js';

// A follower that receives heartbeats but not appends must be able to tell it is behind:
// maxLagMs (follower reads) depends on it.
test("heartbeats cap commit at the follower's match but carry the leader's real commit in leaderCommit", (t) => {
  const { node: a, persist } = electedLeader();
  for (let i = 0; i < 5; i++) a.propose(new Uint8Array([i]));
  persist();
  // b acknowledges everything; c never answers (its appends are lost).
  a.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 6 }));
  persist();
  t.is(a.status().commit, 6);
  a.tick();
  const heartbeats = persist().messages.filter((m) => m.type === 'heartbeat');
  const toC = heartbeats.find((m) => m.to === 'c')!;
  const toB = heartbeats.find((m) => m.to === 'b')!;
  t.is(toC.commit, 0, 'c matched nothing yet: its heartbeat must not let it commit');
  t.is(toC.leaderCommit, 6, 'but c learns how far behind it is');
  t.is(toB.commit, 6);
  t.is(toB.leaderCommit, 6);
  const [decoded] = decodeMessages(encodeMessages([toC]));
  t.is(decoded!.leaderCommit, 6, 'the transport keeps the field');
});
