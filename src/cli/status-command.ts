// status (per-node table, like `etcdctl endpoint status -w table`) and transfer-leader.
import type { KvClient } from '../client/kv-client.js';
import type { EndpointStatus } from '../client/types.js';
import type { ParsedArgs } from './args.js';
import { EXIT_OK, EXIT_UNAVAILABLE } from './exit-codes.js';
import { printJson, printLine, renderTable } from './output.js';
import type { CliIo } from './output.js';

/** Entries the node's applied state trails the leader's commit index ('' when no leader answered). */
function lagOf(s: EndpointStatus, leaderCommit: number | undefined): number | undefined {
  if (!s.status || leaderCommit === undefined) return undefined;
  return Math.max(0, leaderCommit - s.status.appliedIndex);
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
          : { endpoint: s.endpoint, error: { name: s.error.name, message: s.error.message } },
      ),
    );
  } else {
    const rows = all.map((s) => {
      if (!s.status) return [s.endpoint, '-', 'unreachable', '-', '-', '-', '-', '-', s.error.message.split('\n')[0]!.slice(0, 60)];
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
  return all.some((s) => s.status) ? EXIT_OK : EXIT_UNAVAILABLE;
}

export async function transferLeaderCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [to] = args.positionals as [string];
  await kv.transferLeadership(to);
  if (args.values.json) printJson(io, { ok: true, leader: to });
  else printLine(io, `leadership transferred to ${to}`);
  return EXIT_OK;
}
