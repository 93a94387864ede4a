import * as grpc from '@grpc/grpc-js';
import test from 'ava';
import { KV_SERVICE_NAME, kvServiceDefinition, type KvMethodDefinition } from '../../src/api/kv-proto.js';
import { connect, DeadlineExceededError, NotLeaderError } from '../../src/index.js';
import { startFakeNode, type FakeNode } from './kv-service-fake-backend.js';

const started: FakeNode[] = [];
test.after.always(async () => {
  await Promise.all(started.map((n) => n.server.close(0)));
});
async function node(id: string): Promise<FakeNode> {
  const n = await startFakeNode(id);
  started.push(n);
  return n;
}

test('on the stream transport a hung call times out alone; calls beside it on the same stream complete', async (t) => {
  const n = await node('n1');
  const kv = await connect({ endpoints: [n.address], discover: false });
  t.teardown(() => kv.close());
  await kv.put('k', 'v');
  n.backend.hang.add('get');
  const hung = kv.get('k', { deadlineMs: 600 });
  const puts = await Promise.all(Array.from({ length: 50 }, (_, i) => kv.put(`p${i}`, 'x')));
  t.is(puts.length, 50);
  t.is(n.backend.data.size, 51, 'every put landed while the get was stuck');
  await t.throwsAsync(hung, { instanceOf: DeadlineExceededError });
});

test('typed errors and redirects work the same on the unary transport', async (t) => {
  const leader = await node('n1');
  const follower = await node('n2');
  follower.backend.follower = { leaderId: 'n1', leaderAddress: leader.address };
  const kv = await connect({ endpoints: [follower.address], discover: false, transport: 'unary' });
  t.teardown(() => kv.close());
  await kv.put('k', 'v');
  t.is(leader.backend.data.size, 1, 'redirected to the leader');
  leader.backend.failNext(1, () => new NotLeaderError('n1', '', ''), { methods: ['get'] });
  leader.backend.failNext(1, () => new NotLeaderError('n1', '', ''), { methods: ['get'] });
  t.is((await kv.get('k'))?.text(), 'v', 'retried after NotLeader answers');
});

test('an unknown method on the Call stream is answered UNIMPLEMENTED for that id alone', async (t) => {
  const n = await node('n1');
  const methods = kvServiceDefinition() as unknown as Record<string, KvMethodDefinition>;
  const def = methods['Call']!;
  const ping = methods['Ping']!;
  const client = new grpc.Client(n.address, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const stream = client.makeBidiStreamRequest<object, { id: number; code: number; payload: Buffer }>(
    def.path,
    def.requestSerialize as (r: object) => Buffer,
    def.responseDeserialize as (b: Buffer) => { id: number; code: number; payload: Buffer },
  );
  const answers = new Map<number, { code: number; payload: Buffer }>();
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (m: { id: number; code: number; payload: Buffer }) => {
      answers.set(m.id, m);
      if (answers.size === 2) resolve();
    });
    stream.on('error', reject);
  });
  stream.write({ id: 7, method: 'Bogus', payload: Buffer.alloc(0), timeoutMs: 1000 });
  stream.write({ id: 8, method: 'Ping', payload: (ping.requestSerialize as (r: object) => Buffer)({ id: 42 }), timeoutMs: 1000 });
  await done;
  stream.end();
  t.is(answers.get(7)!.code, grpc.status.UNIMPLEMENTED);
  t.is(answers.get(8)!.code, grpc.status.OK);
  t.like(ping.responseDeserialize(answers.get(8)!.payload) as object, { id: 42 });
  t.is(KV_SERVICE_NAME, 'quorumkv.v1.KV');
});
