// PingStream (the streaming side of the bench's transport comparison): every request is answered
// on the same stream with its own id, without touching the backend; bad input ends the stream with
// INVALID_ARGUMENT; a half-close ends it with OK. Plus the bench's pure helpers.
import test from 'ava';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { kvServiceDefinition, type KvMethodDefinition } from '../../src/api/kv-proto.js';
import { PingMultiplexer, UnexpectedPingIdError, decideTransport } from '../../bench/transport-compare.js';
import { serveCallStream } from '../../src/server/kv-service.js';
import { startFakeNode, type FakeNode } from './kv-service-fake-backend.js';

let node: FakeNode;
let client: grpc.Client;
const pingStream = (kvServiceDefinition() as unknown as Record<string, KvMethodDefinition>)['PingStream']!;

test.before(async () => {
  node = await startFakeNode('n1');
  client = new grpc.Client(node.address, grpc.credentials.createInsecure());
});

test.after.always(async () => {
  client?.close();
  await node?.server.close();
});

interface StreamOutcome {
  answers: number[];
  status: grpc.StatusObject;
  error?: grpc.ServiceError;
}

/** Writes raw request bodies, half-closes, and collects the answers' ids and the final status. */
function exchange(bodies: Buffer[], deadlineMs = 5_000): Promise<StreamOutcome> {
  const call = client.makeBidiStreamRequest<Buffer, Buffer>(
    pingStream.path,
    (b) => b,
    (b) => b,
    new grpc.Metadata(),
    { deadline: Date.now() + deadlineMs },
  );
  const answers: number[] = [];
  return new Promise((resolve) => {
    let error: grpc.ServiceError | undefined;
    call.on('data', (b: Buffer) => answers.push((pingStream.responseDeserialize(b) as { id: number }).id));
    call.on('error', (e: grpc.ServiceError) => (error = e));
    // 'status' comes after the last message and after 'error', so all answers are in by then.
    call.on('status', (status: grpc.StatusObject) => resolve({ answers, status, ...(error ? { error } : {}) }));
    for (const b of bodies) call.write(b);
    call.end();
  });
}

const encode = (id: number): Buffer => pingStream.requestSerialize({ id }) as Buffer;

test('PingStream answers every request with its id, in any id order, then ends with OK', async (t) => {
  const before = node.backend.calls.length;
  // Ids need not be sequential or ascending: the client picks them, the server only echoes.
  const ids = [7, 3, 1_000_000, 0, 42, 9_007_199_254_740_991, ...Array.from({ length: 200 }, (_, i) => 500 + ((i * 37) % 200))];
  const out = await exchange(ids.map(encode));
  t.is(out.status.code, grpc.status.OK, out.status.details);
  t.is(out.error, undefined);
  // One answer per request, each carrying exactly a sent id (the repeated ones included).
  t.deepEqual(
    [...out.answers].sort((a, b) => a - b),
    [...ids].sort((a, b) => a - b),
  );
  t.is(node.backend.calls.length, before, 'a ping must not reach the backend');
});

test('PingStream with no requests ends cleanly', async (t) => {
  const out = await exchange([]);
  t.is(out.status.code, grpc.status.OK);
  t.deepEqual(out.answers, []);
});

test('PingStream ends with INVALID_ARGUMENT on an undecodable request, after answering the good ones', async (t) => {
  // field 1 as length-delimited (wire type 2) with a length past the end: not a PingRequest.
  const out = await exchange([encode(1), encode(2), Buffer.from([0x0a, 0x05, 0x01]), encode(3)]);
  t.is(out.status.code, grpc.status.INVALID_ARGUMENT, out.status.details);
  t.deepEqual(out.answers, [1, 2]);
  // The server survives and serves the next stream.
  const again = await exchange([encode(9)]);
  t.is(again.status.code, grpc.status.OK);
  t.deepEqual(again.answers, [9]);
});

test('PingStream rejects an id that would not round-trip exactly (>= 2^53)', async (t) => {
  // field 1 varint = 2^64 - 1
  const huge = Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  const out = await exchange([encode(5), huge]);
  t.is(out.status.code, grpc.status.INVALID_ARGUMENT);
  t.regex(out.status.details, /id/);
  t.deepEqual(out.answers, [5]);
});

test('unary Ping echoes its id', async (t) => {
  const ping = kvServiceDefinition().Ping;
  const res = await new Promise<{ id: number }>((resolve, reject) =>
    client.makeUnaryRequest<object, { id: number }>(
      ping.path,
      (r) => ping.requestSerialize(r) as Buffer,
      (b) => ping.responseDeserialize(b) as { id: number },
      { id: 77 },
      { deadline: Date.now() + 5_000 },
      (err, r) => (err ? reject(err) : resolve(r!)),
    ),
  );
  t.is(res.id, 77);
});

test('PingMultiplexer settles answers arriving out of order and refuses unknown or repeated ids', async (t) => {
  const mux = new PingMultiplexer();
  const a = mux.open();
  const b = mux.open();
  const c = mux.open();
  t.is(new Set([a.id, b.id, c.id]).size, 3);
  t.is(mux.outstanding, 3);
  const settled: number[] = [];
  for (const r of [a, b, c]) void r.done.then(() => settled.push(r.id));
  mux.settle(c.id);
  mux.settle(a.id);
  await c.done;
  await a.done;
  t.deepEqual(settled, [c.id, a.id]);
  t.is(mux.outstanding, 1);
  t.throws(() => mux.settle(a.id), { instanceOf: UnexpectedPingIdError });
  t.throws(() => mux.settle(12345), { instanceOf: UnexpectedPingIdError });
  t.is(mux.outstanding, 1, 'a bad id must not disturb what is outstanding');
  mux.settle(b.id);
  await b.done;
  t.is(mux.outstanding, 0);
});

test('PingMultiplexer.failAll rejects what is outstanding and everything opened later', async (t) => {
  const mux = new PingMultiplexer();
  const a = mux.open();
  const gone = new Error('stream gone');
  mux.failAll(gone);
  await t.throwsAsync(a.done, { is: gone });
  t.is(mux.outstanding, 0);
  await t.throwsAsync(mux.open().done, { is: gone });
  t.is(mux.outstanding, 0);
});

test('decideTransport keeps unary unless streaming is >20% faster at both c=64 and c=256', (t) => {
  const phases = (u64: number, s64: number, u256: number, s256: number) => [
    { transport: 'unary' as const, concurrency: 64, opsPerSec: u64 },
    { transport: 'stream' as const, concurrency: 64, opsPerSec: s64 },
    { transport: 'unary' as const, concurrency: 256, opsPerSec: u256 },
    { transport: 'stream' as const, concurrency: 256, opsPerSec: s256 },
  ];
  t.is(decideTransport(phases(1000, 1300, 1000, 1250)).keep, 'stream');
  t.is(decideTransport(phases(1000, 1300, 1000, 1200)).keep, 'unary', 'exactly +20% is not "more than 20%"');
  t.is(decideTransport(phases(1000, 2000, 1000, 1100)).keep, 'unary', 'both concurrencies must win');
  t.is(decideTransport(phases(1000, 900, 1000, 800)).keep, 'unary');
  const d = decideTransport(phases(1000, 1500, 2000, 3000));
  t.is(d.streamSpeedup['64'], 1.5);
  t.is(d.streamSpeedup['256'], 1.5);
  // A deciding concurrency that was not measured cannot show streaming faster.
  t.is(decideTransport(phases(1000, 1500, 1000, 1500).slice(0, 2)).keep, 'unary');
  t.is(decideTransport(phases(0, 10, 0, 10)).keep, 'unary', 'no unary ops: no ratio, no win');
});

test('a Call stream that cannot write keeps one drain listener however many answers queue, and sends them all in order once drained', async (t) => {
  // A stand-in for the gRPC stream whose buffer is full: every write says "wait for drain".
  const written: number[] = [];
  let full = true;
  const call = Object.assign(new EventEmitter(), {
    write: (m: { id: number }) => {
      written.push(m.id);
      return !full;
    },
    pause: () => {},
    resume: () => {},
    end: () => {},
  });
  const count = 200;
  serveCallStream(
    call as unknown as grpc.ServerDuplexStream<Buffer, object>,
    (buf) => ({ id: buf.readUInt32BE(0), method: 'Ping', payload: new Uint8Array(0), timeoutMs: 1000 }),
    async () => ({ response: {} }),
    () => Buffer.alloc(10),
    { maxInFlight: 1024, maxBufferedBytes: 1024 * 1024 },
  );
  for (let i = 0; i < count; i++) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(i);
    call.emit('data', b);
  }
  await new Promise((r) => setImmediate(r));
  t.is(written.length, 1, 'only the first answer reached the full stream');
  t.is(call.listenerCount('drain'), 1, 'one listener for the whole queue, not one per answer');
  full = false;
  call.emit('drain');
  t.deepEqual(
    written,
    Array.from({ length: count }, (_, i) => i),
  );
  t.is(call.listenerCount('drain'), 0);
});
