// When the commit index moves, the leader tells each follower in step with it by an append that
// carries nothing but the commit index, marked commitOnly; the follower takes it without an answer.
// Anything else (entries, a probe, a rejection, a rebuilding follower) is still answered.
import test from 'ava';
import { decodeMessages, encodeMessages } from '../../src/transport/codec.js';
import { electedLeader, message as msg, newNode, persist } from './core-harness.js';

test('the commit broadcast to followers in replicate state is commit-only; to a probed follower it is a normal append', (t) => {
  const { node: a, persist: persistA } = electedLeader();
  // b acknowledges the no-op: replicate, and index 1 commits. c never answered: still probed.
  a.step(msg({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 1 }));
  const committed = persistA();
  t.is(a.status().commit, 1);
  const toB = committed.messages.find((m) => m.type === 'app' && m.to === 'b');
  t.truthy(toB, 'b hears of the new commit index');
  t.is(toB?.commit, 1);
  t.is(toB?.entries.length, 0);
  t.true(toB?.commitOnly, 'b is in step: no answer needed');
  const toC = committed.messages.filter((m) => m.type === 'app' && m.to === 'c');
  for (const m of toC) t.falsy(m.commitOnly, 'c is being probed: its answer is what moves it on');
  const [decoded] = decodeMessages(encodeMessages([toB!]));
  t.true(decoded!.commitOnly, 'the transport keeps the field');

  // An ordinary append of new entries is never commit-only.
  a.propose(new Uint8Array([7]));
  const appended = persistA();
  const withEntries = appended.messages.find((m) => m.type === 'app' && m.to === 'b');
  t.true((withEntries?.entries.length ?? 0) > 0);
  t.falsy(withEntries?.commitOnly);
});

test('a follower takes a commit-only append without answering, but answers a rejection and a normal empty append', (t) => {
  const { node: b, storage } = newNode('b');
  const entry = { index: 1, term: 1, type: 'normal' as const, data: new Uint8Array([1]) };
  b.step(msg({ type: 'app', from: 'a', to: 'b', term: 1, index: 0, logTerm: 0, entries: [entry], commit: 0 }));
  const first = persist(b, storage);
  t.true(
    first.messages.some((m) => m.type === 'appResp' && !m.reject),
    'entries are answered',
  );

  b.step(msg({ type: 'app', from: 'a', to: 'b', term: 1, index: 1, logTerm: 1, commit: 1, commitOnly: true }));
  const quiet = persist(b, storage);
  t.is(b.status().commit, 1, 'the commit index was taken');
  t.deepEqual(
    quiet.messages.filter((m) => m.type === 'appResp'),
    [],
    'and not answered',
  );
  t.is(quiet.committedEntries.at(-1)?.index, 1);

  // The same without the mark: answered, as any append.
  b.step(msg({ type: 'app', from: 'a', to: 'b', term: 1, index: 1, logTerm: 1, commit: 1 }));
  t.true(persist(b, storage).messages.some((m) => m.type === 'appResp' && !m.reject && m.index === 1));

  // Marked, but the log does not match: the leader must hear of it.
  b.step(msg({ type: 'app', from: 'a', to: 'b', term: 1, index: 5, logTerm: 1, commit: 1, commitOnly: true }));
  const refused = persist(b, storage).messages.find((m) => m.type === 'appResp');
  t.true(refused?.reject, 'a rejection is always answered');
});
