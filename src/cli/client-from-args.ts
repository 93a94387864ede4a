// Builds an SDK client from --endpoints / --config / QUORUMKV_ENDPOINTS and --timeout.
import { connect } from '../client/kv-client.js';
import type { KvClient } from '../client/kv-client.js';
import { readFile } from 'node:fs/promises';
import { caFileFromClusterFile, endpointsFromClusterFile } from '../client/cluster-file.js';
import type { ConnectOptions } from '../client/types.js';
import { UsageError } from './args.js';
import type { CliValues, ParsedArgs } from './args.js';

export async function endpointsFromArgs(values: CliValues, env: NodeJS.ProcessEnv): Promise<string[]> {
  if (values.endpoints !== undefined && values.config !== undefined) throw new UsageError('give --endpoints or --config, not both');
  if (values.config !== undefined) return endpointsFromClusterFile(values.config);
  const raw = values.endpoints ?? env['QUORUMKV_ENDPOINTS'];
  if (raw === undefined) throw new UsageError('no cluster given: use --endpoints host:port,... or --config FILE (or set QUORUMKV_ENDPOINTS)');
  const list = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0) throw new UsageError('--endpoints is empty');
  return list;
}

async function readPem(file: string, option: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new UsageError(`${option} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** TLS from --cacert/--cert/--key, or the CA that --config names; undefined = plaintext. */
export async function tlsFromArgs(values: CliValues): Promise<ConnectOptions['tls']> {
  const caFile = values.cacert ?? (values.config !== undefined ? await caFileFromClusterFile(values.config) : undefined);
  if ((values.cert === undefined) !== (values.key === undefined)) throw new UsageError('give --cert and --key together');
  if (caFile === undefined && values.cert === undefined) return undefined;
  return {
    ...(caFile !== undefined ? { ca: await readPem(caFile, '--cacert') } : {}),
    ...(values.cert !== undefined ? { cert: await readPem(values.cert, '--cert'), key: await readPem(values.key!, '--key') } : {}),
  };
}

/** --token / QUORUMKV_TOKEN, or --user NAME[:PASSWORD] with QUORUMKV_PASSWORD. */
export function credentialsFromArgs(values: CliValues, env: NodeJS.ProcessEnv): ConnectOptions['credentials'] {
  const token = values.token ?? env['QUORUMKV_TOKEN'];
  const user = values.user ?? env['QUORUMKV_USER'];
  if (token !== undefined && values.user !== undefined) throw new UsageError('give --user or --token, not both');
  if (token !== undefined && token !== '') return { token };
  if (user === undefined || user === '') return undefined;
  const colon = user.indexOf(':');
  const username = colon >= 0 ? user.slice(0, colon) : user;
  const password = colon >= 0 ? user.slice(colon + 1) : env['QUORUMKV_PASSWORD'];
  if (password === undefined) throw new UsageError(`--user ${username} needs a password: --user ${username}:PASSWORD or QUORUMKV_PASSWORD`);
  return { username, password };
}

export async function clientFromArgs(parsed: ParsedArgs, env: NodeJS.ProcessEnv): Promise<KvClient> {
  const endpoints = await endpointsFromArgs(parsed.values, env);
  const deadlineMs = parsed.values.timeout;
  const tls = await tlsFromArgs(parsed.values);
  const credentials = credentialsFromArgs(parsed.values, env);
  return connect({
    endpoints,
    ...(deadlineMs !== undefined ? { deadlineMs, attemptTimeoutMs: Math.min(2_000, deadlineMs) } : {}),
    ...(tls ? { tls } : {}),
    ...(credentials ? { credentials } : {}),
  });
}
