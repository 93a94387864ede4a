// Unary vs streaming client transport (issue 4): the same empty Ping, closed loop at each
// concurrency, (a) as unary calls over one channel with N calls outstanding and (b) over ONE
// bidirectional PingStream with N requests outstanding, matched to their answers by id. Both use a
// bare grpc-js client (no SDK logic), so the difference is the transport alone.
//
// Standalone: node --import tsx bench/transport-compare.ts --endpoint host:port [--quick]
//             [--duration-ms n] [--concurrency 1,16,64,256]
// `npm run bench` runs it as one phase after the floor (bench/run.ts).
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { kvServiceDefinition, type KvMethodDefinition } from '../src/api/kv-proto.js';
import { parseBenchArgs } from './args.js';
import { BenchUsageError } from './errors.js';
import { runLoadPhase } from './load.js';
import type { Workload } from './results.js';
import type { LatencySummary } from './stats.js';
import { fmtMs, fmtRate, renderTable } from './table.js';

export type TransportKind = 'unary' | 'stream';

export interface TransportPhaseResult {
  transport: TransportKind;
  concurrency: number;
  ops: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  opsPerSec: number;
  latency?: LatencySummary;
  /** This (client) process's CPU per op: what the transport costs the caller. */
  clientCpuMsPerOp?: number;
  clientCpuPercent?: number;
  /** Node processes' CPU per op (when the caller can read them): what it costs the server. */
  serverCpuMsPerOp?: number;
}

export interface TransportDecision {
  /** What the SDK should use by the rule below. */
  keep: TransportKind;
  /** Streaming ops/s divided by unary ops/s at each concurrency measured. */
  streamSpeedup: Record<string, number>;
  rule: string;
}

export interface TransportCompareResult {
  endpoint: string;
  durationMs: number;
  warmupMs: number;
  phases: TransportPhaseResult[];
  decision: TransportDecision;
}

/** Streaming must beat unary by more than this factor at every deciding concurrency to be kept. */
export const STREAM_WIN_FACTOR = 1.2;
export const DECIDING_CONCURRENCIES: readonly number[] = [64, 256];

/**
 * The issue-4 rule: keep unary unless streaming is clearly faster, i.e. more than 20% more ops/s
 * at c=64 AND c=256. A deciding concurrency that was not measured (or measured zero unary ops)
 * counts as "not shown faster". Pure.
 */
export function decideTransport(phases: readonly Pick<TransportPhaseResult, 'transport' | 'concurrency' | 'opsPerSec'>[]): TransportDecision {
  const rate = (t: TransportKind, c: number): number | undefined => phases.find((p) => p.transport === t && p.concurrency === c)?.opsPerSec;
  const streamSpeedup: Record<string, number> = {};
  for (const c of [...new Set(phases.map((p) => p.concurrency))].sort((a, b) => a - b)) {
    const u = rate('unary', c);
    const s = rate('stream', c);
    if (u !== undefined && s !== undefined && u > 0) streamSpeedup[String(c)] = s / u;
  }
  const wins = DECIDING_CONCURRENCIES.every((c) => (streamSpeedup[String(c)] ?? 0) > STREAM_WIN_FACTOR);
  return {
    keep: wins ? 'stream' : 'unary',
    streamSpeedup,
    rule: `stream only if its ops/s exceed unary's by more than ${Math.round((STREAM_WIN_FACTOR - 1) * 100)}% at c=${DECIDING_CONCURRENCIES.join(' and c=')}`,
  };
}

/** A Ping id that came back twice, or that was never sent (a server bug or a crossed stream). */
export class UnexpectedPingIdError extends Error {
  override readonly name = 'UnexpectedPingIdError';
  constructor(readonly id: number) {
    super(`PingStream answered id ${id}, which is not outstanding; the server must echo each request's id exactly once`);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Outstanding requests of one stream, by id: `open()` hands out the next id and a promise that
 * settles when `settle(id)` sees its answer (in any order) or `failAll` gives up on the stream.
 * Pure bookkeeping (no I/O), so it is unit tested on its own.
 */
export class PingMultiplexer {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private failure: Error | undefined;

  get outstanding(): number {
    return this.waiting.size;
  }

  open(): { id: number; done: Promise<void> } {
    const id = this.nextId++;
    if (this.failure) return { id, done: Promise.reject(this.failure) };
    const done = new Promise<void>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    return { id, done };
  }

  /** Resolves the request `id`; throws UnexpectedPingIdError for an id that is not outstanding. */
  settle(id: number): void {
    const w = this.waiting.get(id);
    if (!w) throw new UnexpectedPingIdError(id);
    this.waiting.delete(id);
    w.resolve();
  }

  /** Rejects everything outstanding and every later `open()` with `err` (the stream is gone). */
  failAll(err: Error): void {
    this.failure ??= err;
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) w.reject(err);
  }
}

type PingClient = grpc.Client & {
  Ping(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { id?: number }) => void): void;
  PingStream(): grpc.ClientDuplexStream<{ id: number }, { id?: number }>;
};

const UNARY_DEADLINE_MS = 5_000;
/** A stream with requests outstanding but no answer for this long is cancelled (its workers then fail, not hang). */
const STREAM_STALL_MS = 5_000;

function newClient(endpoint: string): PingClient {
  const def = kvServiceDefinition() as unknown as Record<string, KvMethodDefinition>;
  if (!def['PingStream']) throw new Error('proto/kv.proto lacks KV.PingStream');
  const Ctor = grpc.makeGenericClientConstructor(def as unknown as grpc.ServiceDefinition, 'KV');
  return new Ctor(endpoint, grpc.credentials.createInsecure()) as unknown as PingClient;
}

/** One closed-loop unary phase: N workers, each awaiting its Ping before sending the next. */
function unaryOperation(client: PingClient): () => Promise<void> {
  let n = 0;
  return () =>
    new Promise<void>((resolve, reject) => {
      const id = ++n;
      client.Ping({ id }, { deadline: Date.now() + UNARY_DEADLINE_MS }, (err, res) => {
        if (err) reject(err);
        else if (res?.id !== id) reject(new Error(`unary Ping answered id ${String(res?.id)} to request ${id}`));
        else resolve();
      });
    });
}

interface StreamSession {
  op: () => Promise<void>;
  close: () => Promise<void>;
}

function openStream(client: PingClient): StreamSession {
  const mux = new PingMultiplexer();
  const call = client.PingStream();
  let lastAnswer = performance.now();
  call.on('data', (res: { id?: number }) => {
    lastAnswer = performance.now();
    try {
      mux.settle(Number(res.id));
    } catch (err) {
      mux.failAll(err as Error);
      call.cancel();
    }
  });
  const ended = new Promise<void>((resolve) => {
    call.on('error', (err) => {
      mux.failAll(err);
      resolve();
    });
    call.on('end', () => {
      mux.failAll(new Error('PingStream ended by the server'));
      resolve();
    });
  });
  const watchdog = setInterval(() => {
    if (mux.outstanding > 0 && performance.now() - lastAnswer > STREAM_STALL_MS) {
      mux.failAll(new Error(`PingStream: no answer for ${STREAM_STALL_MS} ms with ${mux.outstanding} requests outstanding`));
      call.cancel();
    }
  }, 1000);
  watchdog.unref();
  return {
    op: () => {
      const { id, done } = mux.open();
      // write() returning false only means grpc-js buffers it; the closed loop bounds what is buffered to N.
      call.write({ id });
      return done;
    },
    close: async () => {
      clearInterval(watchdog);
      call.end();
      await ended;
    },
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

export interface TransportCompareOptions {
  endpoint: string;
  concurrency: readonly number[];
  durationMs: number;
  warmupMs: number;
  /** CPU ms so far of the server process(es) by id; undefined when they cannot be read. */
  serverCpuMs?: () => Record<string, number> | undefined;
  onPhase?: (transport: TransportKind, concurrency: number) => void;
}

/** Runs unary then stream at each concurrency (fresh channel and stream per phase) and decides. */
export async function runTransportCompare(o: TransportCompareOptions): Promise<TransportCompareResult> {
  const phases: TransportPhaseResult[] = [];
  for (const concurrency of o.concurrency) {
    for (const transport of ['unary', 'stream'] as const) {
      o.onPhase?.(transport, concurrency);
      const client = newClient(o.endpoint);
      const stream = transport === 'stream' ? openStream(client) : undefined;
      try {
        const r = await runLoadPhase({
          // runLoadPhase only copies this label into its result, which is re-labelled below.
          workload: 'ping' as unknown as Workload,
          concurrency,
          durationMs: o.durationMs,
          warmupMs: o.warmupMs,
          op: stream ? stream.op : unaryOperation(client),
          nodeCpuMs: o.serverCpuMs ?? (() => undefined),
        });
        const phase: TransportPhaseResult = { transport, concurrency, ops: r.ops, errors: r.errors, elapsedMs: r.elapsedMs, opsPerSec: r.opsPerSec };
        if (r.firstError) phase.firstError = r.firstError;
        if (r.latency) phase.latency = r.latency;
        if (r.clientCpuMsPerOp !== undefined) phase.clientCpuMsPerOp = r.clientCpuMsPerOp;
        if (r.clientCpuPercent !== undefined) phase.clientCpuPercent = round1(r.clientCpuPercent);
        if (r.cpuMsPerOp !== undefined) phase.serverCpuMsPerOp = r.cpuMsPerOp;
        phases.push(phase);
      } finally {
        await stream?.close();
        client.close();
      }
    }
  }
  return { endpoint: o.endpoint, durationMs: o.durationMs, warmupMs: o.warmupMs, phases, decision: decideTransport(phases) };
}

export function renderTransportCompare(r: TransportCompareResult): string {
  const rows = r.phases.map((p) => {
    const speedup = p.transport === 'stream' ? r.decision.streamSpeedup[String(p.concurrency)] : undefined;
    return [
      p.transport,
      `c=${p.concurrency}`,
      fmtRate(p.opsPerSec),
      speedup === undefined ? '' : `x${speedup.toFixed(2)}`,
      fmtMs(p.latency?.p50Ms),
      fmtMs(p.latency?.p99Ms),
      fmtMs(p.clientCpuMsPerOp),
      fmtMs(p.serverCpuMsPerOp),
      String(p.errors),
    ];
  });
  const table = renderTable(['transport', 'load', 'ops/s', 'vs unary', 'p50 ms', 'p99 ms', 'client cpu ms/op', 'server cpu ms/op', 'errors'], rows, [
    false,
    false,
    true,
    true,
    true,
    true,
    true,
    true,
    true,
  ]);
  const errs = r.phases.filter((p) => p.firstError).map((p) => `  ${p.transport} c=${p.concurrency}: ${p.firstError}`);
  return [
    `transport compare: empty Ping to ${r.endpoint}, unary over one channel vs one bidi PingStream (bare grpc-js, ${r.durationMs} ms per phase)`,
    table,
    ...(errs.length > 0 ? ['first error per phase:', ...errs] : []),
    `decision: keep ${r.decision.keep} (${r.decision.rule})`,
  ].join('\n');
}

const HELP = `node --import tsx bench/transport-compare.ts --endpoint host:port [options]

Unary Ping vs one bidirectional PingStream against a running node's client address.
Options: --duration-ms, --concurrency, --quick (as for npm run bench; other bench options are ignored).
`;

async function main(argv: readonly string[]): Promise<number> {
  let endpoint: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--endpoint') endpoint = argv[++i];
    else if (a.startsWith('--endpoint=')) endpoint = a.slice('--endpoint='.length);
    else rest.push(a);
  }
  let options: ReturnType<typeof parseBenchArgs>;
  try {
    options = parseBenchArgs(rest);
    if (options.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (!endpoint || !/^[^\s:]+:\d{1,5}$/.test(endpoint)) throw new BenchUsageError('--endpoint', "needs the host:port of a node's client address");
  } catch (e) {
    if (e instanceof BenchUsageError) {
      process.stderr.write(`${e.message}\n\n${HELP}`);
      return 2;
    }
    throw e;
  }
  const result = await runTransportCompare({
    endpoint,
    concurrency: options.concurrency,
    durationMs: options.durationMs,
    warmupMs: options.warmupMs,
    onPhase: (t, c) => process.stderr.write(`${t} c=${c}...\n`),
  });
  process.stdout.write(`${renderTransportCompare(result)}\n`);
  return result.phases.some((p) => p.ops === 0) ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
}
