// The SDK's session bookkeeping: one seq per write, and firstUnacked never passes a write that may
// still be retried (so a node never forgets a result a retry could ask for).
import test from 'ava';
import { WriteSession } from '../../src/client/write-session.js';

test('seqs start at 1 and increase; firstUnacked is the oldest write still open', (t) => {
  const s = new WriteSession('c');
  t.is(s.firstUnacked(), 1, 'nothing open: the next seq');
  const a = s.begin();
  const b = s.begin();
  const c = s.begin();
  t.deepEqual([a, b, c], [1, 2, 3]);
  s.end(b);
  t.is(s.firstUnacked(), 1, 'a is still open even though b finished');
  s.end(a);
  t.is(s.firstUnacked(), 3);
  s.end(c);
  t.is(s.firstUnacked(), 4);
  t.is(s.begin(), 4, 'seqs are never reused');
});

test('a client id is generated when none is given, and is unique', (t) => {
  const a = new WriteSession();
  const b = new WriteSession();
  t.regex(a.clientId, /^[0-9a-f-]{36}$/);
  t.not(a.clientId, b.clientId);
});
