import test from 'ava';
import { MemoryStorage, RawNode, type Message } from '../../src/raft/index.ts';
import { decodeMessages, encodeMessages } from '../../src/transport/codec.ts';

const msg = (m: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message => ({
  logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...m,
});

// A follower that receives heartbeats but not appends must be able to tell it is behind:
// maxLagMs (follower reads) depends on it.
test("heartbeats cap commit at the follower's match but carry the leader's real commit in leaderCommit", (t) => {
  const storage = new MemoryStorage({ voters: ['a', 'b', 'c'], learners: [] });
  const a = new RawNode({ id: 'a', electionTicks: 10, heartbeatTicks: 1, random: () => 0 }, storage);
  const persist = () => {
    const rd = a.ready();
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    a.advance(rd);
    return rd;
  };
  a.campaign();
  persist();
  a.step(msg({ type: 'voteResp', from: 'b', to: 'a', term: 1 }));
  persist();
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
