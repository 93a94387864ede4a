import test from 'ava';
import { pack } from 'msgpackr';
import { decodeMessages, encodeMessages, estimateMessageBytes } from '../../src/transport/codec.js';
import { crc32, portableCrc32 } from '../../src/transport/crc32.js';
import { MalformedMessageError, TransportConfigError } from '../../src/transport/errors.js';
import { MessageQueue } from '../../src/transport/message-queue.js';
import { Backoff } from '../../src/transport/backoff.js';
import { parseHostPort } from '../../src/transport/host-port.js';
import { emptyMessage, type Message } from '../../src/raft/types.js';

function appMessage(): Message {
  return {
    ...emptyMessage('app', 'n1', 'n2', 7),
    logTerm: 6,
    index: 41,
    commit: 40,
    entries: [
      { term: 7, index: 42, type: 'normal', data: new Uint8Array([1, 2, 3]) },
      { term: 7, index: 43, type: 'conf', data: new Uint8Array(0) },
      { term: 7, index: 44, type: 'normal', data: new Uint8Array(70_000).fill(9) },
    ],
  };
}

test('messages survive an encode/decode round trip with plain Uint8Array data', (t) => {
  const snap: Message = {
    ...emptyMessage('snap', 'n1', 'n3', 7),
    snapshot: { meta: { index: 10, term: 3, conf: { voters: ['n1', 'n2'], learners: ['n3'] } }, data: new Uint8Array([5, 6]) },
  };
  const resp: Message = { ...emptyMessage('appResp', 'n2', 'n1', 7), reject: true, rejectHint: 12, rejectTerm: 4, context: 'read-1' };
  const decoded = decodeMessages(encodeMessages([appMessage(), snap, resp]));
  t.deepEqual(decoded, [appMessage(), snap, resp]);
  for (const e of decoded[0]!.entries) t.is(e.data.constructor, Uint8Array);
  t.is(decoded[1]!.snapshot!.data.constructor, Uint8Array);
});

test('decode rejects malformed input with MalformedMessageError naming the field', (t) => {
  const cases: [unknown, string][] = [
    [{ not: 'an array' }, ''],
    [[{ ...appMessage(), type: 'bogus' }], '[0].type'],
    [[{ ...appMessage(), term: -1 }], '[0].term'],
    [[{ ...appMessage(), term: 1.5 }], '[0].term'],
    [[{ ...appMessage(), from: '' }], '[0].from'],
    [[{ ...appMessage(), reject: 1 }], '[0].reject'],
    [[{ ...appMessage(), entries: [{ term: 1, index: 1, type: 'normal', data: 'text' }] }], '[0].entries[0].data'],
    [[{ ...appMessage(), entries: [{ term: 1, index: 1, type: 'weird', data: new Uint8Array(0) }] }], '[0].entries[0].type'],
    [[{ ...emptyMessage('snap', 'a', 'b', 1) }], '[0].snapshot'],
    [
      [{ ...appMessage(), snapshot: { meta: { index: 1, term: 1, conf: { voters: [1], learners: [] } }, data: new Uint8Array(0) } }],
      '[0].snapshot.meta.conf.voters[0]',
    ],
    [[null], '[0]'],
  ];
  for (const [value, path] of cases) {
    const err = t.throws(() => decodeMessages(pack(value)), { instanceOf: MalformedMessageError });
    t.is(err?.path, path, `path for ${JSON.stringify(value)?.slice(0, 60)}`);
  }
  const garbage = t.throws(() => decodeMessages(new Uint8Array([0xc1, 0xff, 0x00])), { instanceOf: MalformedMessageError });
  t.regex(garbage!.message, /malformed raft message/);
  // 64-bit integers arrive as bigint and are not valid counters.
  t.throws(() => decodeMessages(new Uint8Array([0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), { instanceOf: MalformedMessageError });
});

test('decode strips unknown fields', (t) => {
  const [m] = decodeMessages(pack([{ ...appMessage(), extra: 'x' }]));
  t.false('extra' in m!);
});

test('crc32 matches the known check value and the portable fallback', (t) => {
  const check = new TextEncoder().encode('123456789');
  t.is(crc32(check), 0xcbf43926);
  t.is(portableCrc32(check), 0xcbf43926);
  const data = new Uint8Array(10_000).map((_, i) => (i * 31) & 0xff);
  t.is(crc32(data.subarray(5000), crc32(data.subarray(0, 5000))), crc32(data));
  t.is(portableCrc32(data), crc32(data));
});

test('message queue refuses the newest item when a bound is reached and keeps order', (t) => {
  const q = new MessageQueue<number>({ maxMessages: 3, maxBytes: 100 });
  t.true(q.push(1, 10));
  t.true(q.push(2, 10));
  t.true(q.push(3, 10));
  t.false(q.push(4, 10), 'count bound');
  t.deepEqual(q.take(15), [1]);
  t.false(q.push(5, 90), 'byte bound');
  t.true(q.push(6, 10));
  t.deepEqual(q.take(1000), [2, 3, 6]);
  t.is(q.bytes, 0);
  t.true(q.push(7, 500), 'an oversize item still fits into an empty queue');
  t.deepEqual(q.take(1), [7]);
});

test('message queue: control messages overtake queued appends and keep a bound of their own', (t) => {
  const q = new MessageQueue<string>({ maxMessages: 100, maxBytes: 100, maxControlBytes: 30 });
  t.true(q.push('app1', 60));
  t.true(q.push('app2', 40));
  t.false(q.push('app3', 10), 'the bulk lane is full');
  t.true(q.push('heartbeat1', 10, 'control'), 'a heartbeat still fits: it has its own lane');
  t.true(q.push('voteResp', 10, 'control'));
  t.true(q.push('heartbeat2', 10, 'control'));
  t.false(q.push('heartbeat3', 10, 'control'), 'the control lane is bounded too');
  t.is(q.length, 5);
  t.is(q.bytes, 130);
  t.deepEqual(q.take(90), ['heartbeat1', 'voteResp', 'heartbeat2', 'app1'], 'control first, then appends in order, within the budget');
  t.deepEqual(q.take(1000), ['app2']);
  t.is(q.bytes, 0);
  t.true(q.push('app4', 500), 'an oversize append still fits into an empty lane');
  t.true(q.push('heartbeat4', 5, 'control'));
  t.deepEqual(q.take(1), ['heartbeat4'], 'at least one item per take, control first');
  t.deepEqual(q.take(1), ['app4']);
});

test('estimated size grows with entry data', (t) => {
  t.true(estimateMessageBytes(appMessage()) > 70_000);
});

test('backoff grows exponentially up to the cap and resets', (t) => {
  const b = new Backoff({ initialMs: 50, maxMs: 2000 }, () => 1);
  const delays = Array.from({ length: 8 }, () => b.next());
  t.deepEqual(delays, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
  b.reset();
  t.is(b.next(), 50);
  const low = new Backoff({ initialMs: 50, maxMs: 2000 }, () => 0);
  t.is(low.next(), 25, 'jitter keeps at least half the delay');
});

test('host:port parsing names the field on error', (t) => {
  t.deepEqual(parseHostPort('127.0.0.1:0', 'listenAddress', true), { host: '127.0.0.1', port: 0 });
  t.deepEqual(parseHostPort('[::1]:7001', 'x', false), { host: '[::1]', port: 7001 });
  for (const bad of ['127.0.0.1', ':7001', '127.0.0.1:99999', 'host:port', '::1:7001', 42]) {
    const err = t.throws(() => parseHostPort(bad, 'peers[0].raftAddress', false), { instanceOf: TransportConfigError });
    t.is(err?.field, 'peers[0].raftAddress');
  }
  t.throws(() => parseHostPort('127.0.0.1:0', 'peers[0].raftAddress', false), { instanceOf: TransportConfigError });
});
