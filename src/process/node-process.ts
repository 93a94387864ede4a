// One quorumkv node as an OS process: `quorumkv serve --config F --node ID` calls runNodeProcess.
//
// Binds its ports first (Raft transport, client service, HTTP), then opens its data dir
// (open-data-dir.ts: LOCK, identity.json, <dataDir>/raft durable log, <dataDir>/kv LevelDB state
// machine — refusing a locked, foreign or inconsistent dir before changing anything), then starts
// the RaftNode runtime behind the already-bound client gRPC service, and optionally an HTTP
// endpoint with /healthz (process alive), /readyz (knows a leader and has applied what it knows is
// committed) and /metrics (Prometheus text). SIGTERM/SIGINT stop it cleanly (exit 0); a second
// signal exits at once (1). pino logs go to stderr; stdout carries only the lifecycle lines below.
//
// stdout protocol (one JSON object per line):
//   {"event":"listening","id","raftAddress","clientAddress","httpAddress","pid"}  (only with QUORUMKV_PEERS_STDIN)
//   {"event":"ready","id","raftAddress","clientAddress","httpAddress","pid"}      once serving
//   {"event":"stopped","id","code"}                                               on exit
//
// Ephemeral ports (tests): the environment overrides the addresses from the config file.
//   QUORUMKV_RAFT_PORT, QUORUMKV_CLIENT_PORT, QUORUMKV_HTTP_PORT  a port number; 0 = any free port
//     (the host is kept from the config; HTTP_PORT enables /metrics even if the config has none)
//   QUORUMKV_DATA_DIR       overrides the node's dataDir
//   QUORUMKV_PEERS_STDIN=1  after binding, print the "listening" line and read ONE line from stdin:
//     {"members":[{"id","raftAddress","clientAddress"},...]}  — the real addresses of every member
//     (this one included) — then start Raft. This is how a harness that starts all nodes on port 0
//     tells each one where its peers ended up.
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { NotLeaderError } from '../api/errors.js';
import type { KvBackend } from '../runtime/kv-backend.js';
import { LevelStateMachine } from '../storage/level-state-machine.js';
import { SnapshotStore } from '../storage/snapshot-store.js';
import { GrpcTransport } from '../transport/grpc-transport.js';
import { loadClusterConfig, type ClusterConfig, type NodeConfig } from './config.js';
import { openDataDir, type OpenedDataDir } from './open-data-dir.js';
import { ClusterView, withPeerRtt, withTimedApply } from './node-observability.js';
import { createNodeLogger, type LogFormat } from './node-logger.js';
import { watchEventLoop } from './event-loop-watch.js';
import { nodeAuthenticator, nodeTls, probeCredentials } from './node-security.js';
import { startHttpEndpoints } from '../server/http-endpoints.js';
import { NodePrometheus } from '../server/node-metrics.js';
import { packageVersion } from '../cli/version.js';
import { startKvServer } from '../server/kv-service.js';
import type { MemberAddress } from '../runtime/membership.js';
import { RaftNode } from '../runtime/raft-node.js';

export interface NodeProcessOverrides {
  raftPort?: number;
  clientPort?: number;
  httpPort?: number;
  dataDir?: string;
  peersFromStdin?: boolean;
  /** --log-format of `serve` (default: pretty on a terminal, else json). */
  logFormat?: LogFormat;
  /** --log-level of `serve` (default: the config's logLevel). */
  logLevel?: string;
}

export class NodeProcessError extends Error {
  override name = 'NodeProcessError';
}

function envPort(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new NodeProcessError(`${name}=${v} is not a port number (0-65535)`);
  return n;
}

export function overridesFromEnv(): NodeProcessOverrides {
  return {
    raftPort: envPort('QUORUMKV_RAFT_PORT'),
    clientPort: envPort('QUORUMKV_CLIENT_PORT'),
    httpPort: envPort('QUORUMKV_HTTP_PORT'),
    dataDir: process.env.QUORUMKV_DATA_DIR || undefined,
    peersFromStdin: process.env.QUORUMKV_PEERS_STDIN === '1',
  };
}

function withPort(address: string, port: number | undefined): string {
  if (port === undefined) return address;
  const i = address.lastIndexOf(':');
  const host = i >= 0 ? address.slice(0, i) : address;
  return `${host || '127.0.0.1'}:${port}`;
}

function emit(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function readMembersFromStdin(): Promise<MemberAddress[]> {
  const rl = createInterface({ input: process.stdin });
  try {
    for await (const line of rl) {
      if (!line.trim()) continue;
      const parsed = JSON.parse(line) as { members?: unknown };
      if (!Array.isArray(parsed.members)) throw new NodeProcessError('stdin peers line must be {"members":[...]}');
      return parsed.members.map((m: Partial<MemberAddress>, i: number) => {
        if (typeof m?.id !== 'string' || typeof m.raftAddress !== 'string' || typeof m.clientAddress !== 'string') {
          throw new NodeProcessError(`stdin members[${i}] needs string id, raftAddress and clientAddress`);
        }
        return { id: m.id, raftAddress: m.raftAddress, clientAddress: m.clientAddress };
      });
    }
  } finally {
    rl.close();
  }
  throw new NodeProcessError('stdin closed before the peers line arrived');
}

/**
 * The client service as bound before the node exists: every call waits for nothing and answers
 * like a node that knows no leader (the SDK and CLI retry elsewhere), so ports can be taken first.
 */
function backendOnceCreated(get: () => RaftNode | undefined, nodeId: string): KvBackend {
  const node = (): RaftNode => {
    const n = get();
    if (!n) throw new NotLeaderError(nodeId, '', '');
    return n;
  };
  return {
    write: async (request) => node().write(request),
    get: async (key, options) => node().get(key, options),
    scan: async (start, end, limit, options) => node().scan(start, end, limit, options),
    waitFor: async (term, index, deadline, signal) => node().waitFor(term, index, deadline, signal),
    status: async () => node().status(),
    awaitLeaderAbove: async (term, deadline, signal) => get()?.awaitLeaderAbove(term, deadline, signal),
    transferLeadership: async (to, deadline, signal) => node().transferLeadership(to, deadline, signal),
    addMember: async (id, raftAddress, clientAddress, options) => node().addMember(id, raftAddress, clientAddress, options),
    removeMember: async (id, options) => node().removeMember(id, options),
    keepAliveLease: async (id, deadline, signal) => node().keepAliveLease(id, deadline, signal),
    leases: async (id, deadline, signal) => node().leases(id, deadline, signal),
    watchSource: () => node().watchSource(),
    backup: async (options) => node().backup(options),
  };
}

interface BoundPorts {
  transport: GrpcTransport;
  kv: Awaited<ReturnType<typeof startKvServer>>;
  http: Awaited<ReturnType<typeof startHttpEndpoints>> | undefined;
  close(): Promise<void>;
}

/** Binds the Raft, client and HTTP ports; on a failure, closes what was bound and rethrows. */
async function bindPorts(
  config: ClusterConfig,
  self: NodeConfig,
  overrides: NodeProcessOverrides,
  node: () => RaftNode | undefined,
  logger: Logger,
  metrics: NodePrometheus,
): Promise<BoundPorts> {
  const bound: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const c of bound.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    // TLS material and users are checked before anything listens (a ConfigError names the field).
    const tls = nodeTls(config, self);
    const auth = nodeAuthenticator(config, logger);
    if (auth) bound.push(async () => auth.close());
    const transport = new GrpcTransport({
      selfId: self.id,
      listenAddress: withPort(self.raftAddress, overrides.raftPort),
      peers: [],
      clusterName: config.cluster,
      ...(self.peerDialAddresses ? { dialOverrides: self.peerDialAddresses } : {}),
      logger,
      observer: metrics.transport,
      // The largest Raft message: one append of maxSizePerMsg plus one entry of the largest request.
      maxReceiveMessageBytes: Math.max(16 * 1024 * 1024, config.raft.maxSizePerMsg + 9 * 1024 * 1024),
      snapshotChunkBytes: config.storage.snapshotChunkBytes,
      testHooks: snapshotTestHooks(),
      ...(tls ? { tls: tls.peer } : {}),
    });
    await transport.start();
    bound.push(() => transport.close());
    const kv = await startKvServer({
      backend: backendOnceCreated(node, self.id),
      address: withPort(self.clientAddress, overrides.clientPort),
      limits: Object.fromEntries(Object.entries(config.limits).filter(([, v]) => v !== undefined)),
      logger,
      onRequest: metrics.request,
      ...(tls ? { credentials: tls.clientServer } : {}),
      ...(auth ? { auth } : {}),
    });
    bound.push(() => kv.close(0));
    const httpBind = self.httpAddress ?? (overrides.httpPort !== undefined ? '127.0.0.1:0' : undefined);
    const view = new ClusterView(node, probeCredentials(config));
    bound.push(async () => view.close());
    const http = httpBind ? await startHttpEndpoints(node, withPort(httpBind, overrides.httpPort), { metrics, clusterView: () => view.members() }) : undefined;
    if (http) bound.push(() => http.close());
    return { transport, kv, http, close };
  } catch (err) {
    await close();
    throw new NodeProcessError(`node ${self.id} cannot start: ${(err as Error).message}; nothing was written to its data dir`);
  }
}

/**
 * Runs one node until SIGTERM/SIGINT (or a fatal error). Resolves with the exit code after a
 * clean stop; the caller (the CLI) should `process.exit(code)`.
 */
export async function runNodeProcess(configPath: string, nodeId: string, overrides: NodeProcessOverrides = overridesFromEnv()): Promise<number> {
  const config = await loadClusterConfig(configPath);
  const self = config.nodes.find((n) => n.id === nodeId);
  if (!self) {
    throw new NodeProcessError(`node ${JSON.stringify(nodeId)} is not in ${configPath} (nodes: ${config.nodes.map((n) => n.id).join(', ')})`);
  }
  const logger: Logger = createNodeLogger({
    nodeId,
    level: overrides.logLevel ?? config.logLevel,
    ...(overrides.logFormat ? { format: overrides.logFormat } : {}),
  });
  const dataDir = overrides.dataDir ?? self.dataDir; // the loader resolved it against the config's directory

  const voters = config.nodes.filter((n) => !n.learner).map((n) => n.id);
  const learners = config.nodes.filter((n) => n.learner).map((n) => n.id);
  const members: MemberAddress[] = config.nodes.map((n) => ({ id: n.id, raftAddress: n.raftAddress, clientAddress: n.clientAddress }));

  let node: RaftNode | undefined;
  const metrics = new NodePrometheus({
    nodeId,
    version: packageVersion(),
    node: () => node,
    peerStats: () => ports.transport.stats().peers,
    inboundRefusals: () => {
      const i = ports.transport.stats().inbound;
      return {
        refused: i.refusedNonMembers + i.refusedIdentity + i.rejectedStreams + i.oversizedBatches,
        malformed: i.malformedBatches,
        misrouted: i.misroutedMessages,
        snapshotsRejected: i.snapshotsRejected,
      };
    },
  });
  // Every port is bound before the data dir is touched: a start that fails on a taken port leaves
  // nothing on disk (it used to leave a bootstrapped data dir behind). Until the node exists, the
  // client service answers "no leader known here, retry elsewhere" and /readyz "not ready".
  const ports: BoundPorts = await bindPorts(config, self, overrides, () => node, logger, metrics);
  const { transport, kv, http } = ports;
  const raftAddress = transport.address();
  const clientAddress = kv.address();
  const httpAddress = http?.address ?? '';

  let opened: OpenedDataDir;
  try {
    opened = await openDataDir({
      dataDir,
      owner: { cluster: config.cluster, nodeId },
      logger,
      raft: {
        bootstrap: config.join ? { voters: [], learners: [] } : { voters, learners },
        logger: {
          info: (event, fields) => logger.info({ event, ...fields }, event),
          warn: (event, fields) => logger.warn({ event, ...fields }, event),
        },
        // The storage times the fsync itself (and logs slow ones); the runtime only records it.
        onFsync: (ms) => metrics.observeFsync(ms / 1000),
        memoryLogBytes: config.storage.logMemoryBytes,
      },
      openStateMachine: async () =>
        withTimedApply(
          await LevelStateMachine.open({
            dir: path.join(dataDir, 'kv'),
            leveldb: {
              cacheBytes: config.storage.leveldbCacheBytes,
              writeBufferBytes: config.storage.leveldbWriteBufferBytes,
              maxFileBytes: config.storage.leveldbMaxFileBytes,
              compression: config.storage.leveldbCompression,
            },
            rebuildCommand: `${overrides.dataDir ? `QUORUMKV_DATA_DIR=${dataDir} ` : ''}quorumkv rebuild --config ${path.resolve(configPath)} --node ${nodeId}`,
            // Once, loudly: the node keeps running (its Raft log is intact) but refuses reads from now on.
            onCorruption: (err) => logger.fatal({ event: 'state_machine_corrupt', dir: err.dir, key: err.key, detail: err.detail, fix: err.fix }, err.message),
          }),
          (seconds) => metrics.observeBackendCommit(seconds),
        ),
    });
  } catch (err) {
    await ports.close();
    throw err;
  }
  const { storage, stateMachine } = opened;
  // Streamed snapshots live beside the log: <dataDir>/snapshots (temp files of a crash are dropped here).
  const snapshotStore = await SnapshotStore.open({ dir: path.join(dataDir, 'snapshots') });

  let fatal: Error | undefined;
  let stopRequested: (() => void) | undefined;
  const stopSignal = new Promise<void>((resolve) => (stopRequested = resolve));

  node = await RaftNode.create({
    id: nodeId,
    members,
    raft: config.raft,
    storage,
    stateMachine,
    transport: withPeerRtt(transport, (peer, seconds) => metrics.observePeerRtt(peer, seconds)),
    snapshotStore,
    clusterName: config.cluster,
    logger,
    metrics: metrics.runtime,
    transportStarted: true,
    measureSaves: false,
    preferredLeader: config.preferredLeader,
    onFatal: (err) => {
      fatal = err;
      stopRequested?.();
    },
    // A removed member stops cleanly (exit 0), as an etcd member does; the runtime logged why.
    onRemoved: () => stopRequested?.(),
  });

  node.setMemberAddress({ id: nodeId, raftAddress, clientAddress });
  const announce = { id: nodeId, raftAddress, clientAddress, httpAddress, pid: process.pid };
  if (overrides.peersFromStdin) {
    emit({ event: 'listening', ...announce });
    for (const m of await readMembersFromStdin()) node.setMemberAddress(m);
  }

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ event: 'forced_exit', signal: sig }, 'second signal: exiting without a clean stop');
      process.exit(1);
    }
    logger.info({ event: 'signal', signal: sig }, 'stopping');
    stopRequested?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Started by `quorumkv cluster` in its own process group: if the launcher dies without stopping
  // us (SIGKILL, crash), stop cleanly instead of lingering as an orphan holding the ports.
  const launcherPid = Number(process.env.QUORUMKV_LAUNCHER_PID ?? 0);
  const orphanWatch =
    launcherPid > 0
      ? setInterval(() => {
          try {
            process.kill(launcherPid, 0);
          } catch {
            logger.warn({ event: 'launcher_gone', launcherPid }, 'the cluster launcher is gone: stopping');
            clearInterval(orphanWatch);
            stopRequested?.();
          }
        }, 1000)
      : undefined;
  orphanWatch?.unref();

  const stopLoopWatch = watchEventLoop({
    observe: (lateMs) => metrics.observeEventLoopDelay(lateMs / 1000),
    onStall: (lateMs, where) =>
      logger.warn(
        { event: 'event_loop_stall', ms: Math.round(lateMs), ...where },
        where && where.waitingForCpuMs >= where.onCpuMs
          ? `event loop late by ${Math.round(lateMs)} ms, ${Math.round(where.waitingForCpuMs)} ms of it waiting for a CPU (the machine is overloaded)`
          : `event loop blocked for ${Math.round(lateMs)} ms`,
      ),
    stallMs: stallLogMs(),
  });
  installTestStallHook(logger);

  await node.start();
  emit({ event: 'ready', ...announce });
  logger.info({ event: 'serving', raftAddress, clientAddress, httpAddress, dataDir }, 'node serving');

  await stopSignal;
  if (orphanWatch) clearInterval(orphanWatch);
  stopLoopWatch();
  // Stop taking new client calls first, then drain the runtime, then the rest.
  await Promise.allSettled([kv.close()]);
  await node.stop();
  await http?.close();
  await opened.lock.release(); // after the log and LevelDB are closed
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  const code = fatal ? 1 : 0;
  if (fatal) logger.error({ event: 'fatal', err: fatal.message }, 'node stopped on a fatal error');
  emit({ event: 'stopped', id: nodeId, code });
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  return code;
}

/**
 * Fault-test hook, off unless QUORUMKV_TEST_STALL_SIGNAL names a signal (e.g. SIGUSR2): on that
 * signal the event loop is blocked for QUORUMKV_TEST_STALL_MS (default 1000 ms, at most 60 s), as a
 * long GC or a synchronous task would, so tests can prove leases survive stalls, not just SIGSTOP.
 */
function installTestStallHook(logger: Logger): void {
  const signal = process.env.QUORUMKV_TEST_STALL_SIGNAL;
  if (!signal) return;
  const ms = Math.min(60_000, Math.max(1, Number(process.env.QUORUMKV_TEST_STALL_MS ?? 1000) || 1000));
  process.on(signal as NodeJS.Signals, () => {
    logger.warn({ event: 'test_stall', ms }, 'test hook: blocking the event loop');
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // Deliberately busy: this is the stall.
    }
  });
}

/**
 * Fault-test hooks for streamed snapshots, off unless set: QUORUMKV_TEST_CORRUPT_SNAPSHOT_PIECE=<n>
 * flips a byte of piece n of this process's first snapshot transfer (after its CRC was taken);
 * QUORUMKV_TEST_SNAPSHOT_PIECE_DELAY_MS=<ms> (at most 1000) paces the pieces like a slow link.
 */
function snapshotTestHooks(): { corruptSnapshotChunk?: (to: string, chunk: number) => boolean; snapshotPieceDelayMs?: number } | undefined {
  const corrupt = process.env.QUORUMKV_TEST_CORRUPT_SNAPSHOT_PIECE;
  const delay = process.env.QUORUMKV_TEST_SNAPSHOT_PIECE_DELAY_MS;
  if (corrupt === undefined && delay === undefined) return undefined;
  let transfers = 0;
  const piece = Number(corrupt);
  return {
    ...(corrupt !== undefined
      ? {
          corruptSnapshotChunk: (_to: string, chunk: number) => {
            if (chunk === 0) transfers++;
            return transfers === 1 && chunk === piece;
          },
        }
      : {}),
    ...(delay !== undefined ? { snapshotPieceDelayMs: Math.min(1000, Math.max(0, Number(delay) || 0)) } : {}),
  };
}

/**
 * The lateness at which the event-loop watch logs `event_loop_stall` (warn): QUORUMKV_STALL_LOG_MS,
 * default 50 ms. A stall that long delays heartbeats and every request, and the line says when it
 * happened (snapshot work must never cause one). The bench lowers it to find the longest.
 */
function stallLogMs(): number {
  return Math.max(1, Number(process.env.QUORUMKV_STALL_LOG_MS ?? 50) || 50);
}
