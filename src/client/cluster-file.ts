// The SDK's one use of a cluster config file (cluster.example.json): the nodes' client addresses.
// The node validates the whole file (src/process/config.ts); the SDK reads only what it dials, so it
// carries none of the server's config code.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../api/errors.js';

/** Client addresses of every node in a cluster config file, in file order. */
export async function endpointsFromClusterFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, '(file)', `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, '(file)', `not valid JSON: ${(err as Error).message}`);
  }
  const nodes = (doc as { nodes?: unknown } | null)?.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) throw new ConfigError(file, 'nodes', 'must be a non-empty array');
  return nodes.map((n: unknown, i) => {
    const address = (n as { clientAddress?: unknown } | null)?.clientAddress;
    if (typeof address !== 'string' || !/^\S+:\d+$/.test(address)) {
      throw new ConfigError(file, `nodes[${i}].clientAddress`, `must be a host:port string, got ${JSON.stringify(address)}`);
    }
    return address;
  });
}

/** The CA file a cluster config names (tls.ca, resolved against the file's directory), if any. */
export async function caFileFromClusterFile(file: string): Promise<string | undefined> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(file, '(file)', `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const ca = (doc as { tls?: { ca?: unknown } } | null)?.tls?.ca;
  if (ca === undefined) return undefined;
  if (typeof ca !== 'string' || ca === '') throw new ConfigError(file, 'tls.ca', 'must be the path of the CA certificate');
  return path.resolve(path.dirname(path.resolve(file)), ca);
}
