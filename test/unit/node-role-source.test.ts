// The runtime reads role, leader and term from the core; it keeps no copy that could lag. Before,
// status() could report "leader" while write() still refused with a stale hint, until the Ready
// that announced the change had been persisted.
import test from 'ava';
import { NotLeaderError } from '../../src/api/errors.js';
import { putCommand, startCluster } from './node-harness.js';

test('right after the core becomes leader, status() and write() agree that this node leads', async (t) => {
  const c = await startCluster(t, { size: 1 });
  const node = c.node('n1');
  // A single voter wins its election inside campaign(), synchronously: the Ready that reports it
  // has not been handled yet when the next two calls run.
  node.campaign();
  const status = await node.status();
  t.is(status.role, 'leader');
  const ack = await node.write({ command: putCommand('k', 'v'), durability: 'async', deadline: Date.now() + 5000 });
  t.true(ack.index > 0);
});

test('a follower refuses writes with a hint that names the leader its core knows', async (t) => {
  const c = await startCluster(t, { size: 3 });
  const leader = await c.leader();
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  const err = await t.throwsAsync(follower.write({ command: putCommand('k', 'v'), durability: 'sync', deadline: Date.now() + 2000 }), {
    instanceOf: NotLeaderError,
  });
  t.is(err?.leaderId, follower.raftStatus().leaderId);
});
