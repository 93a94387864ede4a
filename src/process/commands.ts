// serve / cluster: thin wrappers over the runtime (src/node/), imported lazily so that the client
// commands never load the server, storage and Raft code.
import { loadConfig, selectNode } from './config.js';
import { UsageError } from '../cli/args.js';
import type { ParsedArgs } from '../cli/args.js';

function configOf(args: ParsedArgs, command: string): string {
  if (args.values.config === undefined) throw new UsageError(`${command} needs --config FILE`);
  if (args.values.endpoints !== undefined) throw new UsageError(`${command} takes --config, not --endpoints`);
  return args.values.config;
}

/** Runs one node until it is told to stop; resolves with its exit code. */
export async function serveCommand(args: ParsedArgs): Promise<number> {
  const config = configOf(args, 'serve');
  if (args.values.node === undefined) throw new UsageError('serve needs --node ID');
  // Fail fast with a ConfigError naming the file and the field before anything starts.
  selectNode(await loadConfig(config), args.values.node);
  const { runNodeProcess, overridesFromEnv } = await import('./node-process.js');
  const { logFormat, logLevel } = args.values;
  return runNodeProcess(config, args.values.node, { ...overridesFromEnv(), ...(logFormat ? { logFormat } : {}), ...(logLevel ? { logLevel } : {}) });
}

/**
 * With the node stopped, moves its data dir aside (`<dataDir>.corrupt-<timestamp>`, never deleted)
 * so that its next start rebuilds it from the leader. Honours QUORUMKV_DATA_DIR like `serve`.
 */
export async function rebuildCommand(args: ParsedArgs): Promise<number> {
  const config = configOf(args, 'rebuild');
  if (args.values.node === undefined) throw new UsageError('rebuild needs --node ID');
  const { rebuildNode } = await import('./rebuild.js');
  const r = await rebuildNode(config, args.values.node, { dataDir: process.env.QUORUMKV_DATA_DIR || undefined });
  if (args.values.json) {
    process.stdout.write(`${JSON.stringify({ node: r.nodeId, dataDir: r.dataDir, movedTo: r.movedTo })}\n`);
  } else {
    process.stdout.write(
      `moved ${r.dataDir} to ${r.movedTo} (kept: delete it once node ${r.nodeId} is healthy again)\n` +
        `start the node again (quorumkv serve --config ${config} --node ${r.nodeId}): it starts empty and the leader rebuilds it through InstallSnapshot\n`,
    );
  }
  return 0;
}

/** Runs every node of the config as child processes; resolves with the exit code. */
export async function clusterCommand(args: ParsedArgs): Promise<number> {
  const config = configOf(args, 'cluster');
  await loadConfig(config);
  const { runClusterLauncher } = await import('./cluster-launcher.js');
  const { logFormat, logLevel } = args.values;
  return runClusterLauncher(config, { ...(logFormat ? { logFormat } : {}), ...(logLevel ? { logLevel } : {}) });
}

/** Creates the CA, node and (--client a,b) client certificates the config's tls section names. */
export async function certsCommand(args: ParsedArgs): Promise<number> {
  const config = await loadConfig(configOf(args, 'certs'));
  const clients = (args.values.client ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const { createCerts } = await import('./certs.js');
  const r = await createCerts(config, clients);
  if (args.values.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else {
    for (const f of r.created) process.stdout.write(`created ${f}\n`);
    for (const f of r.kept) process.stdout.write(`kept    ${f} (exists)\n`);
  }
  return 0;
}

async function readSecret(): Promise<string | undefined> {
  const fromEnv = process.env.QUORUMKV_PASSWORD;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin });
  try {
    for await (const line of rl) return line;
  } finally {
    rl.close();
  }
  return undefined;
}

/** user add|token|remove|list against the users file of --config. */
export async function userCommand(args: ParsedArgs): Promise<number> {
  const config = await loadConfig(configOf(args, args.command));
  const users = await import('./user-command.js');
  const name = args.positionals[0] ?? '';
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  switch (args.command) {
    case 'user add': {
      const roles = (args.values.role ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      if (roles.length === 0) throw new UsageError(`user add needs --role (${users.ROLE_HELP})`);
      const password = await readSecret();
      if (!password) throw new UsageError('user add needs a password: set QUORUMKV_PASSWORD or type it on stdin');
      await users.addUser(config, name, roles, password);
      out(args.values.json ? JSON.stringify({ user: name, roles }) : `user ${name} saved with roles ${roles.join(', ')}`);
      return 0;
    }
    case 'user token': {
      const token = await users.addToken(config, name);
      out(args.values.json ? JSON.stringify({ user: name, token }) : token);
      return 0;
    }
    case 'user remove':
      out((await users.removeUser(config, name)) ? `user ${name} removed` : `no user ${name}`);
      return 0;
    default: {
      const list = await users.listUsers(config);
      if (args.values.json) out(JSON.stringify(list));
      else for (const u of list) out(`${u.name.padEnd(20)} ${u.roles.join(',').padEnd(24)} password:${u.password ? 'yes' : 'no'} tokens:${u.tokens}`);
      return 0;
    }
  }
}

/** snapshot status FILE (verify, print metadata) | snapshot restore FILE --config C --node N. */
export async function snapshotCommand(args: ParsedArgs): Promise<number> {
  const file = args.positionals[0];
  if (!file) throw new UsageError(`${args.command} needs FILE`);
  const { restoreSnapshot, snapshotStatus } = await import('./snapshot-restore.js');
  const { decodeMembers } = await import('../runtime/snapshot-envelope.js');
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  if (args.command === 'snapshot status') {
    const s = await snapshotStatus(file);
    const members = decodeMembers(s.header.app);
    const doc = {
      file,
      index: s.header.index,
      term: s.header.term,
      voters: s.header.conf.voters,
      learners: s.header.conf.learners,
      members,
      keys: s.trailer.keys,
      pairs: s.trailer.pairs,
      bytes: s.fileBytes,
      crc32: s.fileCrc32,
      cluster: s.trailer.cluster,
      node: s.trailer.nodeId,
      createdAt: s.trailer.createdAt,
    };
    if (args.values.json) out(JSON.stringify(doc));
    else {
      out(`${file}: ok (every record, pair and CRC-32 checked)`);
      out(`  index ${doc.index}, term ${doc.term}; taken from node ${doc.node} of cluster ${JSON.stringify(doc.cluster)} at ${doc.createdAt}`);
      out(`  voters ${doc.voters.join(', ')}${doc.learners.length > 0 ? `; learners ${doc.learners.join(', ')}` : ''}`);
      out(`  keys ${doc.keys} (pairs ${doc.pairs}), ${doc.bytes} bytes, crc32 ${doc.crc32.toString(16).padStart(8, '0')}`);
    }
    return 0;
  }
  const config = configOf(args, 'snapshot restore');
  if (args.values.node === undefined) throw new UsageError('snapshot restore needs --node ID');
  const r = await restoreSnapshot(file, config, args.values.node, { dataDir: process.env.QUORUMKV_DATA_DIR || undefined });
  const { index, term } = r.summary.header;
  if (args.values.json) out(JSON.stringify({ node: r.nodeId, dataDir: r.dataDir, cluster: r.cluster, index, term, keys: r.summary.trailer.keys }));
  else {
    out(`restored node ${r.nodeId} of cluster ${JSON.stringify(r.cluster)} into ${r.dataDir}: index ${index}, term ${term}, ${r.summary.trailer.keys} keys`);
    out(`restore every node of ${config} from the same file, then start them (quorumkv serve --config ${config} --node ID)`);
  }
  return 0;
}
