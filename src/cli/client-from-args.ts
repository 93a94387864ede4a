// Builds an SDK client from --endpoints / --config / QUORUMKV_ENDPOINTS and --timeout.
import { connect } from '../client/kv-client.js';
import type { KvClient } from '../client/kv-client.js';
import { endpointsFromClusterFile } from '../client/cluster-file.js';
import { intOption, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';

export async function endpointsFromArgs(values: ParsedArgs['values'], env: NodeJS.ProcessEnv): Promise<string[]> {
  if (values.endpoints !== undefined && values.config !== undefined) throw new UsageError('give --endpoints or --config, not both');
  if (values.config !== undefined) return endpointsFromClusterFile(values.config);
  const raw = values.endpoints ?? env['QUORUMKV_ENDPOINTS'];
  if (raw === undefined) throw new UsageError('no cluster given: use --endpoints host:port,... or --config FILE (or set QUORUMKV_ENDPOINTS)');
  const list = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new UsageError('--endpoints is empty');
  return list;
}

export async function clientFromArgs(parsed: ParsedArgs, env: NodeJS.ProcessEnv): Promise<KvClient> {
  const endpoints = await endpointsFromArgs(parsed.values, env);
  const deadlineMs = intOption(parsed.values, 'timeout', 1);
  return connect({
    endpoints,
    ...(deadlineMs !== undefined ? { deadlineMs, attemptTimeoutMs: Math.min(2_000, deadlineMs) } : {}),
  });
}
