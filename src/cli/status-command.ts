// status (per-node table, like `etcdctl endpoint status -w table`), endpoint health and
// transfer-leader.
import type { KvClient } from '../client/kv-client.js';
import type { EndpointStatus } from '../client/types.js';
import type { ParsedArgs } from './args.js';
import { reachFailure } from './error-text.js';
import { EXIT_OK, EXIT_UNAVAILABLE } from './exit-codes.js';
import { printJson, printLine, renderTable } from './output.js';
import type { CliIo } from './output.js';

/** Entries the node's applied state trails the leader's commit index ('' when no leader answered). */
function lagOf(s: EndpointStatus, leaderCommit: number | undefined): number | undefined {
  if (!s.status || leaderCommit === undefined) return undefined;
  return Math.max(0, leaderCommit - s.status.appliedIndex);
}

/** Exit 0 only when every endpoint answered (like etcdctl, which exits non-zero when one did not). */
function allAnswered(all: { ok: boolean }[]): number {
  return all.length > 0 && all.every((s) => s.ok) ? EXIT_OK : EXIT_UNAVAILABLE;
}

export async function statusCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const all = await kv.status();
  const leader = all.find((s) => s.status?.role === 'leader');
  const leaderCommit = leader?.status?.commitIndex;
  if (args.values.json) {
    printJson(
      io,
      all.map((s) =>
        s.status
          ? { endpoint: s.endpoint, ...s.status, lag: lagOf(s, leaderCommit) ?? null }
          : { endpoint: s.endpoint, error: { name: s.error.name, message: reachFailure(s.error) } },
      ),
    );
  } else {
    const rows = all.map((s) => {
      if (!s.status) return [s.endpoint, '-', 'unreachable', '-', '-', '-', '-', '-', reachFailure(s.error)];
      const st = s.status;
      const lag = lagOf(s, leaderCommit);
      return [
        s.endpoint,
        st.id,
        st.role,
        String(st.term),
        String(st.commitIndex),
        String(st.appliedIndex),
        lag === undefined ? '-' : String(lag),
        st.leaderId || '-',
        '',
      ];
    });
    printLine(io, renderTable(['ENDPOINT', 'ID', 'ROLE', 'TERM', 'COMMIT', 'APPLIED', 'LAG', 'LEADER', 'ERROR'], rows));
  }
  return allAnswered(all.map((s) => ({ ok: s.status !== undefined })));
}

/** Healthy = the endpoint answered within the deadline and knows a leader (so it can serve). */
export async function endpointHealthCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const started = performance.now();
  const all = await kv.status();
  const tookMs = Math.round(performance.now() - started);
  const rows = all.map((s) => {
    if (!s.status) return { endpoint: s.endpoint, health: false, error: reachFailure(s.error) };
    if (!s.status.leaderId) return { endpoint: s.endpoint, health: false, error: `node ${s.status.id} knows no leader (election in progress or no quorum)` };
    return { endpoint: s.endpoint, health: true, id: s.status.id, leader: s.status.leaderId };
  });
  if (args.values.json) printJson(io, rows);
  else {
    for (const r of rows) {
      printLine(io, r.health ? `${r.endpoint} is healthy: node ${r.id}, leader ${r.leader} (${tookMs} ms)` : `${r.endpoint} is unhealthy: ${r.error}`);
    }
  }
  return allAnswered(rows.map((r) => ({ ok: r.health })));
}

export async function transferLeaderCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [to] = args.positionals as [string];
  await kv.transferLeadership(to);
  if (args.values.json) printJson(io, { ok: true, leader: to });
  else printLine(io, `leadership transferred to ${to}`);
  return EXIT_OK;
}
