import test from 'ava';
import { packr } from '../../src/storage/codec.js';
import { InvalidSnapshotError } from '../../src/storage/errors.js';
import { dataKey, encodeStoredValue } from '../../src/storage/keyspace.js';
import { decodeStateSnapshot, encodeStateSnapshot, SNAPSHOT_FORMAT_V1, StateSnapshotWriter } from '../../src/storage/state-snapshot.js';

const te = new TextEncoder();
function pairs(n: number): [Uint8Array, Uint8Array][] {
  return Array.from({ length: n }, (_, i) => {
    const key = dataKey(te.encode(`key-${String(i).padStart(5, '0')}`));
    return [key, encodeStoredValue(key, { value: te.encode(`v${i}`), version: 1, createIndex: i + 1, modIndex: i + 1 })];
  });
}

test('a chunked snapshot of many pairs round-trips in key order', (t) => {
  const input = pairs(2500); // spans three chunk records
  const decoded = decodeStateSnapshot(encodeStateSnapshot({ index: 2500, term: 3 }, input));
  t.deepEqual(decoded.applied, { index: 2500, term: 3 });
  t.is(decoded.pairs.length, 2500);
  t.deepEqual(
    decoded.pairs.map(([k]) => [...k]),
    input.map(([k]) => [...k]),
  );
  t.is(new TextDecoder().decode(decoded.data[2499]![1].value), 'v2499');
});

test('an empty state round-trips', (t) => {
  const decoded = decodeStateSnapshot(new StateSnapshotWriter().finish({ index: 7, term: 1 }));
  t.deepEqual(decoded.applied, { index: 7, term: 1 });
  t.is(decoded.pairs.length, 0);
});

test('a snapshot missing its last chunk is rejected, not restored partially', (t) => {
  const writer = new StateSnapshotWriter();
  for (const [k, v] of pairs(1500)) writer.add(k, v);
  const whole = writer.finish({ index: 1500, term: 1 });
  const lastChunk = packr.pack(pairs(1500).slice(1000));
  const truncated = whole.slice(0, whole.length - lastChunk.length);
  t.throws(() => decodeStateSnapshot(truncated), { instanceOf: InvalidSnapshotError, message: /chunks/ });
});

test('snapshots in the previous single-document format still decode', (t) => {
  const legacy = packr.pack({ format: SNAPSHOT_FORMAT_V1, index: 4, term: 2, pairs: pairs(3) });
  const decoded = decodeStateSnapshot(legacy);
  t.deepEqual(decoded.applied, { index: 4, term: 2 });
  t.is(decoded.data.length, 3);
});
