// A three-member etcd cluster beside quorumkv for `npm run bench -- --compare etcd`, and a bare
// grpc-js client of etcd's KV API (bench/etcd.proto). Same shape as the quorumkv bench cluster:
// members on 127.0.0.1 with ports that were free a moment ago, data dirs in a temp root, logs to
// files there, heartbeat and election timeout taken from the quorumkv raft settings, and a cleanup
// that runs on normal end, error and process exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, copyFileSync, constants as fsConstants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { BenchRaftSettings } from './cluster.js';
import { BenchClusterError } from './errors.js';
import { freeLoopbackPorts } from './free-port.js';
import { isRunning, stopChildren } from './child-processes.js';

const ETCD_PROTO = fileURLToPath(new URL('./etcd.proto', import.meta.url));
const POLL_MS = 50;

/** The `etcd` executable on PATH, or undefined (the compare phase is then skipped). */
export function findEtcd(): { bin: string; version: string } | undefined {
  const dirs = (process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const dir of dirs) {
    const bin = path.join(dir, 'etcd');
    try {
      accessSync(bin, fsConstants.X_OK);
    } catch {
      continue;
    }
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 5000 });
    if (r.error || r.status !== 0) continue;
    const m = /etcd Version:\s*(\S+)/.exec(r.stdout);
    return { bin, version: m?.[1] ?? 'unknown' };
  }
  return undefined;
}

/** etcd's flags for the quorumkv raft timing: heartbeat = heartbeatTicks x tickMs, election = electionTicks x tickMs. */
export function etcdTiming(raft: BenchRaftSettings): { heartbeatMs: number; electionMs: number } {
  return { heartbeatMs: raft.heartbeatTicks * raft.tickMs, electionMs: raft.electionTicks * raft.tickMs };
}

export interface EtcdMember {
  name: string;
  clientAddress: string;
  peerUrl: string;
  dataDir: string;
  logFile: string;
  pid: number;
}

interface Child {
  member: EtcdMember;
  proc: ChildProcess;
  exited: Promise<void>;
}

// ---- the bare grpc-js client -------------------------------------------------------------------

const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: true };

interface EtcdStatus {
  memberId: string;
  leader: string;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
}

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Record<string, unknown>) => void) => void;

let ctors: { KV: grpc.ServiceClientConstructor; Maintenance: grpc.ServiceClientConstructor } | undefined;

function clientCtors(): { KV: grpc.ServiceClientConstructor; Maintenance: grpc.ServiceClientConstructor } {
  if (!ctors) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(ETCD_PROTO, LOADER_OPTIONS)) as unknown as {
      etcdserverpb: { KV: grpc.ServiceClientConstructor; Maintenance: grpc.ServiceClientConstructor };
    };
    ctors = { KV: pkg.etcdserverpb.KV, Maintenance: pkg.etcdserverpb.Maintenance };
  }
  return ctors;
}

function call<T>(client: grpc.Client, method: string, req: object, deadlineMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Unary>)[method]!.call(client, req, { deadline: Date.now() + deadlineMs }, (err, res) =>
      err ? reject(err) : resolve(res as T),
    );
  });
}

/**
 * One HTTP/2 channel per member; writes and linearizable reads go to the leader (as the quorumkv
 * SDK sends them to its leader), serializable reads rotate over all members (as the SDK's follower
 * reads do).
 */
export class EtcdKv {
  private readonly kv: grpc.Client[];
  private readonly maint: grpc.Client[];
  private leaderIdx = 0;
  private rr = 0;

  constructor(
    readonly endpoints: readonly string[],
    private readonly deadlineMs = 10_000,
  ) {
    const { KV, Maintenance } = clientCtors();
    const creds = grpc.credentials.createInsecure();
    this.kv = endpoints.map((e) => new KV(e, creds));
    // The Status calls share each member's channel (grpc-js reuses a subchannel for equal targets and options).
    this.maint = endpoints.map((e) => new Maintenance(e, creds));
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    await call(this.kv[this.leaderIdx]!, 'Put', { key: Buffer.from(key), value }, this.deadlineMs);
  }

  /** Range of one key; returns whether the key was found. */
  async get(key: string, serializable: boolean): Promise<boolean> {
    const target = serializable ? this.kv[this.rr++ % this.kv.length]! : this.kv[this.leaderIdx]!;
    const res = await call<{ kvs: unknown[] }>(target, 'Range', { key: Buffer.from(key), serializable }, this.deadlineMs);
    return res.kvs.length > 0;
  }

  async statuses(deadlineMs = 1000): Promise<(EtcdStatus | undefined)[]> {
    return Promise.all(
      this.maint.map(async (c) => {
        try {
          const r = await call<{ header: { memberId: string }; leader: string; raftIndex: string; raftTerm: string; raftAppliedIndex: string }>(
            c,
            'Status',
            {},
            deadlineMs,
          );
          return {
            memberId: r.header.memberId,
            leader: r.leader,
            raftIndex: Number(r.raftIndex),
            raftTerm: Number(r.raftTerm),
            raftAppliedIndex: Number(r.raftAppliedIndex),
          };
        } catch {
          return undefined;
        }
      }),
    );
  }

  /** The leader every member agrees on (member id and term), pointing writes at it; undefined if none. */
  async refreshLeader(): Promise<{ index: number; term: number } | undefined> {
    const s = await this.statuses();
    if (s.some((x) => x === undefined)) return undefined;
    const all = s as EtcdStatus[];
    const leader = all[0]!.leader;
    if (leader === '0' || !all.every((x) => x.leader === leader && x.raftTerm === all[0]!.raftTerm)) return undefined;
    const index = all.findIndex((x) => x.memberId === leader);
    if (index < 0) return undefined;
    this.leaderIdx = index;
    return { index, term: all[0]!.raftTerm };
  }

  /** Waits until every member has applied what the leader had committed when first asked. */
  async waitForSettle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    let target: number | undefined;
    while (Date.now() < deadline) {
      const s = await this.statuses();
      const ok = s.filter((x): x is EtcdStatus => x !== undefined);
      const leader = ok.find((x) => x.memberId === x.leader);
      if (leader && target === undefined) target = leader.raftIndex;
      if (target !== undefined && ok.length === this.endpoints.length && ok.every((x) => x.raftAppliedIndex >= target!)) return true;
      await sleep(POLL_MS);
    }
    return false;
  }

  close(): void {
    for (const c of [...this.kv, ...this.maint]) c.close();
  }
}

// ---- the cluster -------------------------------------------------------------------------------

export interface StartEtcdOptions {
  bin: string;
  raft: BenchRaftSettings;
  size?: number;
  tmpBase?: string;
}

export class EtcdCluster {
  private stopped = false;
  private readonly exitHook = (): void => this.killNowSync();

  private constructor(
    readonly root: string,
    private readonly children: Child[],
  ) {
    process.on('exit', this.exitHook);
  }

  get members(): EtcdMember[] {
    return this.children.map((c) => c.member);
  }

  get endpoints(): string[] {
    return this.children.map((c) => c.member.clientAddress);
  }

  /** Members by name with their pids, the shape bench/cpu.ts's cpuMsByNode reads. */
  get cpuNodes(): { id: string; pid: number }[] {
    return this.children.map((c) => ({ id: c.member.name, pid: c.member.pid }));
  }

  exitedMembers(): string[] {
    return this.children.filter((c) => c.proc.exitCode !== null || c.proc.signalCode !== null).map((c) => c.member.name);
  }

  logTails(lines = 15): Record<string, string> {
    const out: Record<string, string> = {};
    for (const c of this.children) {
      try {
        out[c.member.name] = readFileSync(c.member.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      } catch {
        out[c.member.name] = '(no log)';
      }
    }
    return out;
  }

  static async start(options: StartEtcdOptions): Promise<EtcdCluster> {
    const size = options.size ?? 3;
    const { heartbeatMs, electionMs } = etcdTiming(options.raft);
    const root = mkdtempSync(path.join(options.tmpBase ?? os.tmpdir(), 'quorumkv-bench-etcd-'));
    const ports = await freeLoopbackPorts(size * 2);
    const specs = Array.from({ length: size }, (_, i) => {
      const name = `e${i + 1}`;
      return {
        name,
        clientAddress: `127.0.0.1:${ports[2 * i]}`,
        peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
        dataDir: path.join(root, name),
        logFile: path.join(root, `${name}.log`),
      };
    });
    const initialCluster = specs.map((s) => `${s.name}=${s.peerUrl}`).join(',');
    // etcd reads ETCD_* variables as flags: the parent's must not reconfigure the bench's members.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD')) env[k] = v;

    const children: Child[] = [];
    try {
      for (const s of specs) {
        const fd = openSync(s.logFile, 'a');
        const args = [
          `--name=${s.name}`,
          `--data-dir=${s.dataDir}`,
          `--listen-client-urls=http://${s.clientAddress}`,
          `--advertise-client-urls=http://${s.clientAddress}`,
          `--listen-peer-urls=${s.peerUrl}`,
          `--initial-advertise-peer-urls=${s.peerUrl}`,
          `--initial-cluster=${initialCluster}`,
          '--initial-cluster-state=new',
          `--initial-cluster-token=quorumkv-bench-${path.basename(root)}`,
          `--heartbeat-interval=${heartbeatMs}`,
          `--election-timeout=${electionMs}`,
          // quorumkv runs pre-vote and check-quorum; etcd has check-quorum on, pre-vote off by default.
          '--pre-vote=true',
          '--logger=zap',
          '--log-outputs=stderr',
          '--log-level=info',
        ];
        const proc = spawn(options.bin, args, { env, stdio: ['ignore', fd, fd] });
        closeSync(fd);
        if (proc.pid === undefined) throw new BenchClusterError(`could not spawn etcd member ${s.name} (${options.bin})`);
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        children.push({ member: { ...s, pid: proc.pid }, proc, exited });
      }
    } catch (e) {
      await new EtcdCluster(root, children).stop();
      throw e;
    }
    return new EtcdCluster(root, children);
  }

  /** Waits (bounded) until all members answer Status and agree on a leader; points `kv` at it. */
  async waitForLeader(kv: EtcdKv, timeoutMs: number): Promise<{ name: string; term: number }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const dead = this.exitedMembers();
      if (dead.length > 0) throw new BenchClusterError(`etcd member ${dead.join(', ')} exited while starting`, this.logTails());
      const l = await kv.refreshLeader();
      if (l) return { name: this.children[l.index]!.member.name, term: l.term };
      await sleep(POLL_MS * 4);
    }
    throw new BenchClusterError(`etcd: no leader agreed by all members within ${timeoutMs} ms`, this.logTails());
  }

  /** SIGTERM, SIGKILL after the grace, optionally copy the logs to `saveLogsTo`, then remove the temp root. */
  async stop(graceMs = 5000, saveLogsTo?: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await stopChildren(this.children, graceMs);
    if (saveLogsTo) {
      try {
        mkdirSync(saveLogsTo, { recursive: true });
        for (const c of this.children) copyFileSync(c.member.logFile, path.join(saveLogsTo, `${c.member.name}.log`));
      } catch {
        // best effort: the numbers matter more than the logs
      }
    }
    rmSync(this.root, { recursive: true, force: true });
    process.off('exit', this.exitHook);
  }

  killNowSync(): void {
    for (const c of this.children) if (isRunning(c.proc)) c.proc.kill('SIGKILL');
    if (!this.stopped) rmSync(this.root, { recursive: true, force: true });
    this.stopped = true;
  }
}
