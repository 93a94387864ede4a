// The machine's floor, measured in the same run as the cluster: what one durable append and one
// empty gRPC round trip cost here. A sync put cannot be faster than roughly their sum.
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { kvServiceDefinition } from '../src/api/kv-proto.js';
import type { FloorResult } from './results.js';
import { summarizeSamples } from './stats.js';

const FSYNC_BLOCK = 4096;
const WARMUP = 10;

/**
 * write+fdatasync of 4 KiB appends to a file in `dir` (the cluster's data filesystem). Synchronous
 * calls on purpose: nothing else runs in the bench process meanwhile, so the clock measures the
 * syscalls and not the event loop.
 */
export function measureFsync(dir: string, samples: number): FloorResult['fsync'] {
  const file = path.join(dir, `fsync-probe-${process.pid}.bin`);
  const block = randomBytes(FSYNC_BLOCK);
  const fd = openSync(file, 'a');
  const times: number[] = [];
  try {
    for (let i = 0; i < WARMUP + samples; i++) {
      const t0 = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      const dt = performance.now() - t0;
      if (i >= WARMUP) times.push(dt);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  const s = summarizeSamples(times);
  return { dir, blockBytes: FSYNC_BLOCK, samples: s.count, p50Ms: s.p50Ms, p99Ms: s.p99Ms };
}

type UnaryFn = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void;

function pingOnce(client: grpc.Client, method: string): Promise<void> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, UnaryFn>)[method]!.call(client, {}, { deadline: Date.now() + 5000 }, (err) => (err ? reject(err) : resolve()));
  });
}

async function timePings(client: grpc.Client, method: string, samples: number): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) await pingOnce(client, method);
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await pingOnce(client, method);
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * p50/p99 of the node's empty `Ping` unary over loopback, with a bare grpc-js client (no SDK
 * logic on top). If the node does not answer Ping, an in-process grpc-js echo server stands in so
 * the floor is still measured, and `source` says which one it was.
 */
export async function measureLoopback(endpoint: string, samples: number): Promise<FloorResult['loopback'] & { fallbackReason?: string }> {
  const def = kvServiceDefinition();
  const Ctor = grpc.makeGenericClientConstructor(def as unknown as grpc.ServiceDefinition, 'KV');
  const client = new Ctor(endpoint, grpc.credentials.createInsecure());
  let fallbackReason: string | undefined;
  try {
    const s = summarizeSamples(await timePings(client, 'Ping', samples));
    return { source: 'ping', samples: s.count, p50Ms: s.p50Ms, p99Ms: s.p99Ms };
  } catch (e) {
    fallbackReason = `Ping on ${endpoint} failed: ${(e as Error).message}`;
  } finally {
    client.close();
  }
  const s = summarizeSamples(await echoServerRoundTrips(samples));
  return { source: 'in-process-echo', samples: s.count, p50Ms: s.p50Ms, p99Ms: s.p99Ms, fallbackReason };
}

async function echoServerRoundTrips(samples: number): Promise<number[]> {
  const def = kvServiceDefinition();
  const server = new grpc.Server();
  server.addService({ Ping: def.Ping } as unknown as grpc.ServiceDefinition, {
    Ping: (_call: unknown, cb: (err: null, res: object) => void) => cb(null, {}),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const Ctor = grpc.makeGenericClientConstructor(def as unknown as grpc.ServiceDefinition, 'KV');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await timePings(client, 'Ping', samples);
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }
}
