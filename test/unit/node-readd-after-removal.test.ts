// Node ids are reused: a node removed from the cluster and added back later (with an empty data
// dir, as the removal log line tells the operator) replays its own earlier removal while it catches
// up from the log. That must not shut it down again (found by the simulator on the real runtime).
import test from 'ava';
import { RaftNode } from '../../src/runtime/raft-node.js';
import { MemoryRaftStorage } from '../../src/storage/memory-raft-storage.js';
import { MemoryStateMachine } from '../../src/storage/memory-state-machine.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { TIMINGS, bytes, eventually, putCommand, text } from './node-harness.js';

const soon = (ms = 5000) => Date.now() + ms;

test('a removed node added back under the same id catches up through its old removal and keeps running', async (t) => {
  const network = new MemoryNetwork();
  const founders = ['n1', 'n2', 'n3'];
  const members = [...founders, 'n4'].map((id) => ({ id, raftAddress: `memory:${id}`, clientAddress: `client-${id}:1` }));
  const nodes: RaftNode[] = [];
  const removed: string[] = [];
  const start = async (id: string, voters: string[], name = id) => {
    const node = await RaftNode.create({
      id,
      members,
      // No snapshots: a joiner catches up by replaying the whole log, old removal included.
      raft: { ...TIMINGS, snapshotEntries: 0, snapshotBytes: 0 },
      storage: new MemoryRaftStorage({ bootstrap: { voters, learners: [] } }),
      stateMachine: new MemoryStateMachine(),
      transport: network.transport(id),
      drainTimeoutMs: 200,
      onRemoved: () => removed.push(name),
    });
    nodes.push(node);
    await node.start();
    return node;
  };
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  for (const id of founders) await start(id, founders);
  const leader = await eventually(() => nodes.find((n) => n.raftStatus().role === 'leader'), 5000, 'a leader');

  const first = await start('n4', []);
  await leader.addMember('n4', 'memory:n4', 'client-n4:1', { learner: true, deadline: soon() });
  await eventually(() => first.raftStatus().applied >= leader.raftStatus().commit, 5000, 'n4 to catch up as a learner');
  await leader.removeMember('n4', { deadline: soon() });
  await first.stop();

  // Back under the same id, with a new empty data dir.
  const again = await start('n4', [], 'n4 again');
  await leader.addMember('n4', 'memory:n4', 'client-n4:1', { learner: true, deadline: soon() });
  const ack = await leader.write({ command: putCommand('after', 'readd'), durability: 'sync', deadline: soon() });
  await eventually(() => again.raftStatus().applied >= ack.index, 5000, 'the re-added n4 to catch up');
  const got = await again.get(bytes('after'), { consistency: 'follower', deadline: soon() });
  t.is(text(got.kv?.value), 'readd');
  t.deepEqual(
    removed.filter((n) => n === 'n4 again'),
    [],
    'the old removal, replayed, did not stop the node again',
  );
});
