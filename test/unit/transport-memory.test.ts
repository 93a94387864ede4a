import test from 'ava';
import { MemoryNetwork, type MemoryTransport } from '../../src/transport/memory-transport.js';
import type { SnapshotStatusEvent } from '../../src/transport/transport.js';
import { emptyMessage, type Message, type NodeId } from '../../src/raft/types.js';

interface Node {
  transport: MemoryTransport;
  received: Message[];
  unreachable: NodeId[];
  snapshots: SnapshotStatusEvent[];
}

async function node(network: MemoryNetwork, id: NodeId, peers?: NodeId[]): Promise<Node> {
  const transport = network.transport(id, { peers });
  const n: Node = { transport, received: [], unreachable: [], snapshots: [] };
  transport.onMessage((m) => n.received.push(m));
  transport.onUnreachable((p) => n.unreachable.push(p));
  transport.onSnapshotStatus((e) => n.snapshots.push(e));
  await transport.start();
  return n;
}

const hb = (from: NodeId, to: NodeId, commit: number): Message => ({ ...emptyMessage('heartbeat', from, to, 1), commit });
const settle = () => new Promise((r) => setImmediate(r));

test('delivery is asynchronous, in order, and does not share objects', async (t) => {
  const net = new MemoryNetwork();
  const a = await node(net, 'a');
  const b = await node(net, 'b');
  const app: Message = { ...emptyMessage('app', 'a', 'b', 1), entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array([1, 2]) }] };
  a.transport.send([app, hb('a', 'b', 1), hb('a', 'b', 2)]);
  t.is(b.received.length, 0, 'nothing delivered synchronously');
  (app.entries[0]!.data as Uint8Array)[0] = 99; // mutation after send is not seen by the receiver
  await settle();
  t.deepEqual(
    b.received.map((m) => m.type),
    ['app', 'heartbeat', 'heartbeat'],
  );
  t.deepEqual([...b.received[0]!.entries[0]!.data], [1, 2]);
  t.deepEqual(
    b.received.slice(1).map((m) => m.commit),
    [1, 2],
  );
  t.deepEqual(net.stats(), { delivered: 3, dropped: 0 });
});

test('partition drops messages both ways and reports unreachable; heal restores delivery', async (t) => {
  const net = new MemoryNetwork();
  const [a, b, c] = [await node(net, 'a'), await node(net, 'b'), await node(net, 'c')];
  net.partition('a', 'b');
  a.transport.send([hb('a', 'b', 1), hb('a', 'c', 1)]);
  b.transport.send([hb('b', 'a', 1)]);
  await settle();
  t.is(b.received.length, 0);
  t.is(a.received.length, 0);
  t.is(c.received.length, 1, 'other links are unaffected');
  t.deepEqual(a.unreachable, ['b']);
  t.deepEqual(b.unreachable, ['a']);

  net.heal();
  a.transport.send([hb('a', 'b', 2)]);
  await settle();
  t.deepEqual(
    b.received.map((m) => m.commit),
    [2],
  );
});

test('one-way partitions and isolation', async (t) => {
  const net = new MemoryNetwork();
  const [a, b, c] = [await node(net, 'a'), await node(net, 'b'), await node(net, 'c')];
  net.partitionOneWay('a', 'b');
  a.transport.send([hb('a', 'b', 1)]);
  b.transport.send([hb('b', 'a', 1)]);
  await settle();
  t.is(b.received.length, 0);
  t.is(a.received.length, 1);
  net.heal();
  net.isolate('c');
  a.transport.send([hb('a', 'c', 1)]);
  c.transport.send([hb('c', 'b', 1)]);
  await settle();
  t.is(c.received.length, 0);
  t.is(b.received.length, 0);
  t.false(net.canReach('a', 'c'));
  t.true(net.canReach('a', 'b'));
});

test('messages to a stopped node are dropped; a restarted node receives again', async (t) => {
  const net = new MemoryNetwork();
  const a = await node(net, 'a');
  const b = await node(net, 'b');
  await b.transport.close();
  a.transport.send([
    hb('a', 'b', 1),
    { ...emptyMessage('snap', 'a', 'b', 1), snapshot: { meta: { index: 1, term: 1, conf: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array([7]) } },
  ]);
  await settle();
  t.is(b.received.length, 0);
  t.true(a.unreachable.includes('b'));
  t.deepEqual(a.snapshots, [{ to: 'b', ok: false }]);
  t.throws(() => net.transport('a'), { message: /already has an open transport/ });

  const b2 = await node(net, 'b');
  a.transport.send([
    hb('a', 'b', 2),
    { ...emptyMessage('snap', 'a', 'b', 1), snapshot: { meta: { index: 1, term: 1, conf: { voters: ['a', 'b'], learners: [] } }, data: new Uint8Array([7]) } },
  ]);
  await settle();
  await settle();
  t.deepEqual(
    b2.received.map((m) => m.type),
    ['heartbeat', 'snap'],
  );
  t.deepEqual([...b2.received[1]!.snapshot!.data], [7]);
  t.deepEqual(a.snapshots[1], { to: 'b', ok: true });
});

test('explicit peer lists and removePeer restrict who can be reached', async (t) => {
  const net = new MemoryNetwork();
  const a = await node(net, 'a', ['b']);
  const b = await node(net, 'b');
  const c = await node(net, 'c');
  a.transport.send([hb('a', 'b', 1), hb('a', 'c', 1)]);
  await settle();
  t.is(b.received.length, 1);
  t.is(c.received.length, 0, 'c is not a peer of a');
  a.transport.addPeer({ id: 'c', raftAddress: 'memory:c' });
  a.transport.removePeer('b');
  a.transport.send([hb('a', 'b', 2), hb('a', 'c', 2)]);
  await settle();
  t.is(b.received.length, 1, 'b was removed');
  t.is(c.received.length, 1, 'c was added');
});

test('a throwing handler does not break delivery to others', async (t) => {
  const net = new MemoryNetwork();
  const a = await node(net, 'a');
  const b = await node(net, 'b');
  const c = await node(net, 'c');
  b.transport.onMessage(() => {
    throw new Error('boom');
  });
  a.transport.send([hb('a', 'b', 1), hb('a', 'c', 1)]);
  await settle();
  t.is(c.received.length, 1);
  t.is(b.received.length, 0);
});
