// What the bench asks the cluster between measurements, through the SDK's status().
import { setTimeout as sleep } from 'node:timers/promises';
import type { EndpointStatus, KvClient, NodeStatus } from '../src/index.js';
import { BenchClusterError } from './errors.js';
import type { LeaderSnapshot } from './results.js';

const POLL_MS = 50;

/**
 * The leader every answering node agrees on (same leader id and term, and that node says it is the
 * leader), or undefined. Requiring agreement means followers have heard from the leader, so
 * follower reads and forwarding work from the first operation on.
 */
export function agreedLeader(statuses: readonly EndpointStatus[], expectedNodes: number): LeaderSnapshot | undefined {
  const ok = statuses.map((s) => s.status).filter((s): s is NodeStatus => s !== undefined);
  if (ok.length < expectedNodes) return undefined;
  const leaders = ok.filter((s) => s.role === 'leader');
  if (leaders.length !== 1) return undefined;
  const leader = leaders[0]!;
  const agree = ok.every((s) => s.leaderId === leader.id && s.term === leader.term);
  return agree ? { id: leader.id, term: leader.term } : undefined;
}

export async function waitForLeader(client: KvClient, expectedNodes: number, timeoutMs: number, nodeExited: () => string[]): Promise<LeaderSnapshot> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no status yet';
  while (Date.now() < deadline) {
    const dead = nodeExited();
    if (dead.length > 0) throw new BenchClusterError(`node ${dead.join(', ')} exited while the cluster was starting`);
    const statuses = await client.status({ deadlineMs: 1000 });
    const leader = agreedLeader(statuses, expectedNodes);
    if (leader) return leader;
    last = statuses
      .map((s) => (s.status ? `${s.status.id}:${s.status.role}(term ${s.status.term}, leader '${s.status.leaderId}')` : `${s.endpoint}: ${s.error.message}`))
      .join('; ');
    await sleep(POLL_MS * 4);
  }
  throw new BenchClusterError(`no leader agreed by all ${expectedNodes} nodes within ${timeoutMs} ms (last: ${last})`);
}

/**
 * Waits until every node has applied everything the leader had in its log when we asked, so that
 * a write phase's backlog (async puts especially) is not billed to the next phase. Returns false
 * if that did not happen within the timeout (the run goes on; the caller reports it).
 */
export async function waitForSettle(client: KvClient, expectedNodes: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let target: number | undefined;
  while (Date.now() < deadline) {
    const ok = (await client.status({ deadlineMs: 1000 })).map((s) => s.status).filter((s): s is NodeStatus => s !== undefined);
    const leader = ok.find((s) => s.role === 'leader');
    if (leader && target === undefined) target = leader.lastIndex;
    if (target !== undefined && ok.length >= expectedNodes && ok.every((s) => s.appliedIndex >= target!)) return true;
    await sleep(POLL_MS);
  }
  return false;
}
