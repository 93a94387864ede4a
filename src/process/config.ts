// The cluster config file (see cluster.example.json): loaded and validated once, failing fast with
// a ConfigError naming the file and the field. Optional fields get defaults here, so the rest of
// the code reads a complete, checked ClusterConfig.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../api/errors.js';
import { RAFT_DEFAULTS } from '../raft/defaults.js';
import { RUNTIME_DEFAULTS } from '../runtime/defaults.js';
import { LEVELDB_DEFAULTS } from '../storage/level-state-machine.js';
import { FILE_LOG_DEFAULTS } from '../storage/file-raft-storage.js';

export { ConfigError };

export interface NodeConfig {
  id: string;
  /** host:port for peer (Raft) traffic. */
  raftAddress: string;
  /** host:port for the client API (SDK, CLI). */
  clientAddress: string;
  /** Absolute (resolved against the config file's directory). */
  dataDir: string;
  /** true: a non-voting learner (warm standby, e.g. a DR site) instead of a voter. Default false. */
  learner: boolean;
  /** host:port for /metrics, /healthz, /readyz; absent = not served. */
  httpAddress?: string;
  /** This node's certificate and key (PEM files, absolute), when the cluster uses TLS. */
  tls?: { cert: string; key: string };
  /**
   * Per peer id: the host:port this node dials for that peer's Raft traffic instead of its
   * raftAddress (e.g. a TCP proxy that `quorumkv drill` uses to cut links without root).
   */
  peerDialAddresses?: Record<string, string>;
}

/** TLS for the whole cluster: mutual TLS between nodes, TLS (optionally mutual) for clients. */
export interface ClusterTls {
  /** The cluster CA certificate (PEM file, absolute): it signs every node and client certificate. */
  ca: string;
  /** Clients must present a certificate of the CA; with auth on, its CN is the user name. */
  clientCertAuth: boolean;
}

export interface AuthSettings {
  /** The users file (absolute): users, password and token hashes, roles. */
  usersFile: string;
}

export interface RaftSettings {
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Take a snapshot (and compact the log) every this many applied entries; 0 = never. */
  snapshotEntries: number;
  /** ...or once this many bytes of commands were applied since the last one; 0 = never. */
  snapshotBytes: number;
  /** ...and once the commands applied since the last one are this percent of its file's size; 0 = no wait. */
  snapshotLogPercent: number;
  /** Entries kept behind a snapshot for slow followers; absent = the runtime's default. */
  retainEntries?: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
}

/**
 * Memory and disk bounds of the storage (see README, "Sizing"): the LevelDB block cache and write
 * buffer, its table-file size, compression, and the size of one snapshot chunk on the wire.
 */
export interface StorageSettings {
  leveldbCacheBytes: number;
  leveldbWriteBufferBytes: number;
  leveldbMaxFileBytes: number;
  leveldbCompression: boolean;
  snapshotChunkBytes: number;
  /** Bytes of the newest Raft log entries held in memory; older ones are read from the log file. */
  logMemoryBytes: number;
}

export const DEFAULT_STORAGE_SETTINGS: Readonly<StorageSettings> = Object.freeze({
  leveldbCacheBytes: LEVELDB_DEFAULTS.cacheBytes,
  leveldbWriteBufferBytes: LEVELDB_DEFAULTS.writeBufferBytes,
  leveldbMaxFileBytes: LEVELDB_DEFAULTS.maxFileBytes,
  leveldbCompression: LEVELDB_DEFAULTS.compression,
  snapshotChunkBytes: 1024 * 1024,
  logMemoryBytes: FILE_LOG_DEFAULTS.memoryLogBytes,
});

/** Client API limits (see KvServiceLimits in src/server/kv-service.ts); absent = the service default. */
export interface ClientLimits {
  maxKeyBytes?: number;
  maxValueBytes?: number;
  maxInFlight?: number;
  defaultDeadlineMs?: number;
}

export interface ClusterConfig {
  /** The file this came from, as given (used in error messages). */
  file: string;
  cluster: string;
  nodes: NodeConfig[];
  raft: RaftSettings;
  storage: StorageSettings;
  limits: ClientLimits;
  /**
   * true: the nodes start with no voters and wait to be added to an existing cluster (membership
   * change) instead of bootstrapping one. Default false.
   */
  join: boolean;
  /** Failback target: leadership returns to this voter once it is healthy and caught up. */
  preferredLeader?: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Absent: plaintext everywhere (local development only). */
  tls?: ClusterTls;
  /** Absent: clients are not authenticated (every client may do everything). */
  auth?: AuthSettings;
}

/**
 * The one table of defaults for the config file's optional fields. Values that a lower layer owns
 * are taken from that layer's own defaults, so each fact lives in one place.
 */
export const DEFAULT_RAFT_SETTINGS: Readonly<RaftSettings> = Object.freeze({
  tickMs: 10,
  electionTicks: 30,
  heartbeatTicks: 3,
  snapshotEntries: RUNTIME_DEFAULTS.snapshotEntries,
  snapshotBytes: RUNTIME_DEFAULTS.snapshotBytes,
  snapshotLogPercent: RUNTIME_DEFAULTS.snapshotLogPercent,
  preVote: RAFT_DEFAULTS.preVote,
  checkQuorum: RAFT_DEFAULTS.checkQuorum,
  maxInflightMsgs: RAFT_DEFAULTS.maxInflightMsgs,
  maxSizePerMsg: RAFT_DEFAULTS.maxSizePerMsg,
});

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '']);

type Json = Record<string, unknown>;

/** Validates one parsed JSON document; `file` is used in messages and to resolve dataDir. */
class Checker {
  constructor(readonly file: string) {}

  fail(field: string, detail: string): never {
    throw new ConfigError(this.file, field, detail);
  }

  object(v: unknown, field: string): Json {
    if (v === undefined) this.fail(field, 'missing (required object)');
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, `must be an object, got ${describe(v)}`);
    return v as Json;
  }

  onlyKnown(o: Json, field: string, known: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!known.includes(k)) this.fail(join(field, k), `unknown field (expected one of ${known.join(', ')})`);
    }
  }

  string(o: Json, key: string, field: string): string {
    const v = o[key];
    if (v === undefined) this.fail(join(field, key), 'missing (required string)');
    if (typeof v !== 'string') this.fail(join(field, key), `must be a string, got ${describe(v)}`);
    if (v.trim() === '') this.fail(join(field, key), 'must not be empty');
    return v;
  }

  optString(o: Json, key: string, field: string): string | undefined {
    return o[key] === undefined ? undefined : this.string(o, key, field);
  }

  bool(o: Json, key: string, field: string, fallback: boolean): boolean {
    const v = o[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(join(field, key), `must be true or false, got ${describe(v)}`);
    return v;
  }

  int(o: Json, key: string, field: string, fallback: number | undefined, min: number, max: number): number {
    const v = o[key];
    if (v === undefined) {
      if (fallback === undefined) this.fail(join(field, key), 'missing (required integer)');
      return fallback;
    }
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(join(field, key), `must be an integer, got ${describe(v)}`);
    if (v < min || v > max) this.fail(join(field, key), `must be between ${min} and ${max}, got ${v}`);
    return v;
  }

  address(o: Json, key: string, field: string): string {
    const v = this.string(o, key, field);
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
    if (!m) this.fail(join(field, key), `"${v}" is not host:port (e.g. 127.0.0.1:7001)`);
    const port = Number(m[2]);
    if (port < 1 || port > 65535) this.fail(join(field, key), `port ${port} in "${v}" must be between 1 and 65535`);
    return v;
  }
}

function join(field: string, key: string): string {
  return field ? `${field}.${key}` : key;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `"${v}"`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function splitAddress(a: string): { host: string; port: string } {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: a.slice(i + 1) };
}

/** Parse and validate config text. `file` names the source in errors and anchors relative dataDirs. */
export function parseConfig(text: string, file: string): ClusterConfig {
  const c: Checker = new Checker(file);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    c.fail('(file)', `not valid JSON: ${(e as Error).message}`);
  }
  const root = c.object(doc, '(root)');
  c.onlyKnown(root, '', ['cluster', 'nodes', 'raft', 'storage', 'limits', 'preferredLeader', 'logLevel', 'join', 'tls', 'auth']);
  let tls: ClusterTls | undefined;
  if (root['tls'] !== undefined) {
    const t = c.object(root['tls'], 'tls');
    c.onlyKnown(t, 'tls', ['ca', 'clientCertAuth']);
    tls = { ca: path.resolve(path.dirname(path.resolve(file)), c.string(t, 'ca', 'tls')), clientCertAuth: c.bool(t, 'clientCertAuth', 'tls', false) };
  }
  const cluster = c.string(root, 'cluster', '');

  const rawNodes = root['nodes'];
  if (rawNodes === undefined) c.fail('nodes', 'missing (required list of nodes)');
  if (!Array.isArray(rawNodes)) c.fail('nodes', `must be a list, got ${describe(rawNodes)}`);
  if (rawNodes.length === 0) c.fail('nodes', 'must list at least one node');

  const baseDir = path.dirname(path.resolve(file));
  const ids = new Map<string, string>();
  const addresses = new Map<string, string>(); // host:port -> field that claimed it
  const ports = new Map<string, { host: string; field: string }[]>();
  const dataDirs = new Map<string, string>();

  const claim = (address: string, field: string): void => {
    const prior = addresses.get(address);
    if (prior) c.fail(field, `duplicate address ${address} (also ${prior})`);
    addresses.set(address, field);
    const { host, port } = splitAddress(address);
    // A wildcard listener takes the port on every interface.
    for (const other of ports.get(port) ?? []) {
      if (WILDCARD_HOSTS.has(host) || WILDCARD_HOSTS.has(other.host)) c.fail(field, `duplicate port ${port} (also ${other.field}: ${other.host}:${port})`);
    }
    ports.set(port, [...(ports.get(port) ?? []), { host, field }]);
  };

  const nodes: NodeConfig[] = rawNodes.map((raw: unknown, i: number) => {
    const f = `nodes[${i}]`;
    const n = c.object(raw, f);
    c.onlyKnown(n, f, ['id', 'raftAddress', 'clientAddress', 'dataDir', 'learner', 'httpAddress', 'tls', 'peerDialAddresses']);
    const id = c.string(n, 'id', f);
    if (!NODE_ID.test(id)) c.fail(`${f}.id`, `"${id}" must be 1-64 characters of letters, digits, '.', '_' or '-'`);
    const priorId = ids.get(id);
    if (priorId) c.fail(`${f}.id`, `duplicate id ${id} (also ${priorId})`);
    ids.set(id, `${f}.id`);
    const raftAddress = c.address(n, 'raftAddress', f);
    claim(raftAddress, `${f}.raftAddress`);
    const clientAddress = c.address(n, 'clientAddress', f);
    claim(clientAddress, `${f}.clientAddress`);
    let httpAddress: string | undefined;
    if (n['httpAddress'] !== undefined) {
      httpAddress = c.address(n, 'httpAddress', f);
      claim(httpAddress, `${f}.httpAddress`);
    }
    const dataDir = path.resolve(baseDir, c.string(n, 'dataDir', f));
    const priorDir = dataDirs.get(dataDir);
    if (priorDir) c.fail(`${f}.dataDir`, `duplicate data directory ${dataDir} (also ${priorDir}); each node needs its own`);
    dataDirs.set(dataDir, `${f}.dataDir`);
    const node: NodeConfig = { id, raftAddress, clientAddress, dataDir, learner: c.bool(n, 'learner', f, false) };
    if (httpAddress) node.httpAddress = httpAddress;
    if (n['peerDialAddresses'] !== undefined) {
      const pf = `${f}.peerDialAddresses`;
      const dial = c.object(n['peerDialAddresses'], pf);
      const overrides: Record<string, string> = {};
      for (const peer of Object.keys(dial)) {
        if (!NODE_ID.test(peer)) c.fail(`${pf}.${peer}`, `"${peer}" is not a node id (1-64 characters of letters, digits, '.', '_' or '-')`);
        if (peer === id) c.fail(`${pf}.${peer}`, 'a node does not dial itself; remove this entry');
        overrides[peer] = c.address(dial, peer, pf);
      }
      node.peerDialAddresses = overrides;
    }
    if (n['tls'] !== undefined) {
      if (!tls) c.fail(`${f}.tls`, 'a node certificate needs the cluster CA: add "tls": { "ca": "..." } at the top level');
      const nt = c.object(n['tls'], `${f}.tls`);
      c.onlyKnown(nt, `${f}.tls`, ['cert', 'key']);
      node.tls = { cert: path.resolve(baseDir, c.string(nt, 'cert', `${f}.tls`)), key: path.resolve(baseDir, c.string(nt, 'key', `${f}.tls`)) };
    } else if (tls) {
      c.fail(`${f}.tls`, 'missing: with "tls" at the top level every node needs { "cert": "...", "key": "..." } (quorumkv certs creates them)');
    }
    return node;
  });
  if (!nodes.some((n) => !n.learner)) c.fail('nodes', 'at least one node must be a voter (not a learner)');

  const r = root['raft'] === undefined ? {} : c.object(root['raft'], 'raft');
  c.onlyKnown(r, 'raft', [...Object.keys(DEFAULT_RAFT_SETTINGS), 'retainEntries']);
  const d = DEFAULT_RAFT_SETTINGS;
  const raft: RaftSettings = {
    tickMs: c.int(r, 'tickMs', 'raft', d.tickMs, 1, 60_000),
    electionTicks: c.int(r, 'electionTicks', 'raft', d.electionTicks, 2, 1_000_000),
    heartbeatTicks: c.int(r, 'heartbeatTicks', 'raft', d.heartbeatTicks, 1, 1_000_000),
    snapshotEntries: c.int(r, 'snapshotEntries', 'raft', d.snapshotEntries, 0, Number.MAX_SAFE_INTEGER),
    snapshotBytes: c.int(r, 'snapshotBytes', 'raft', d.snapshotBytes, 0, Number.MAX_SAFE_INTEGER),
    snapshotLogPercent: c.int(r, 'snapshotLogPercent', 'raft', d.snapshotLogPercent, 0, 10_000),
    preVote: c.bool(r, 'preVote', 'raft', d.preVote),
    checkQuorum: c.bool(r, 'checkQuorum', 'raft', d.checkQuorum),
    maxInflightMsgs: c.int(r, 'maxInflightMsgs', 'raft', d.maxInflightMsgs, 1, 1_000_000),
    maxSizePerMsg: c.int(r, 'maxSizePerMsg', 'raft', d.maxSizePerMsg, 1, 1024 * 1024 * 1024),
  };
  if (r['retainEntries'] !== undefined) raft.retainEntries = c.int(r, 'retainEntries', 'raft', undefined, 0, Number.MAX_SAFE_INTEGER);
  if (raft.heartbeatTicks >= raft.electionTicks) {
    c.fail(
      'raft.heartbeatTicks',
      `(${raft.heartbeatTicks}) must be less than raft.electionTicks (${raft.electionTicks}); followers would time out between heartbeats`,
    );
  }

  const st = root['storage'] === undefined ? {} : c.object(root['storage'], 'storage');
  c.onlyKnown(st, 'storage', Object.keys(DEFAULT_STORAGE_SETTINGS));
  const sd = DEFAULT_STORAGE_SETTINGS;
  const storage: StorageSettings = {
    leveldbCacheBytes: c.int(st, 'leveldbCacheBytes', 'storage', sd.leveldbCacheBytes, 1 << 20, 64 * 1024 * 1024 * 1024),
    leveldbWriteBufferBytes: c.int(st, 'leveldbWriteBufferBytes', 'storage', sd.leveldbWriteBufferBytes, 1 << 20, 4 * 1024 * 1024 * 1024),
    leveldbMaxFileBytes: c.int(st, 'leveldbMaxFileBytes', 'storage', sd.leveldbMaxFileBytes, 1 << 20, 1024 * 1024 * 1024),
    leveldbCompression: c.bool(st, 'leveldbCompression', 'storage', sd.leveldbCompression),
    snapshotChunkBytes: c.int(st, 'snapshotChunkBytes', 'storage', sd.snapshotChunkBytes, 4096, 8 * 1024 * 1024),
    logMemoryBytes: c.int(st, 'logMemoryBytes', 'storage', sd.logMemoryBytes, 0, 64 * 1024 * 1024 * 1024),
  };

  const l = root['limits'] === undefined ? {} : c.object(root['limits'], 'limits');
  c.onlyKnown(l, 'limits', ['maxKeyBytes', 'maxValueBytes', 'maxInFlight', 'defaultDeadlineMs']);
  const limits: ClientLimits = {};
  for (const key of ['maxKeyBytes', 'maxValueBytes', 'maxInFlight', 'defaultDeadlineMs'] as const) {
    if (l[key] !== undefined) limits[key] = c.int(l, key, 'limits', undefined, 1, 1024 * 1024 * 1024);
  }

  const config: ClusterConfig = {
    file,
    cluster,
    nodes,
    raft,
    storage,
    limits,
    join: c.bool(root, 'join', '', false),
    logLevel: 'info',
  };
  if (tls) config.tls = tls;
  if (root['auth'] !== undefined) {
    const a = c.object(root['auth'], 'auth');
    c.onlyKnown(a, 'auth', ['usersFile']);
    config.auth = { usersFile: path.resolve(baseDir, c.string(a, 'usersFile', 'auth')) };
  }
  const preferred = c.optString(root, 'preferredLeader', '');
  if (preferred !== undefined) {
    const node = nodes.find((n) => n.id === preferred);
    if (!node) c.fail('preferredLeader', `unknown node id ${preferred} (nodes: ${nodes.map((n) => n.id).join(', ')})`);
    if (node.learner) c.fail('preferredLeader', `${preferred} is a learner; only a voter can lead`);
    config.preferredLeader = preferred;
  }
  const level = c.optString(root, 'logLevel', '');
  if (level !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(level)) c.fail('logLevel', `"${level}" is not one of ${LOG_LEVELS.join(', ')}`);
    config.logLevel = level as ClusterConfig['logLevel'];
  }
  return config;
}

/** Read and validate a config file. */
export async function loadConfig(file: string): Promise<ClusterConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '(file)', `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseConfig(text, file);
}

/** Alias of loadConfig (the name the runtime uses). */
export const loadClusterConfig = loadConfig;

/** The node `id` from the config (for `serve --node ID`). */
export function selectNode(config: ClusterConfig, id: string, field = '--node'): NodeConfig {
  const node = config.nodes.find((n) => n.id === id);
  if (!node) {
    throw new ConfigError(config.file, field, `unknown node id ${id} (the config defines ${config.nodes.map((n) => n.id).join(', ')})`);
  }
  return node;
}

/** Client addresses of every node: the SDK's endpoints. */
export function clientEndpoints(config: ClusterConfig): string[] {
  return config.nodes.map((n) => n.clientAddress);
}
