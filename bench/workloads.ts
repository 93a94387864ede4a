// One function per measured operation, built on the public SDK (what users call).
import type { KvClient } from '../src/index.js';
import type { Workload } from './results.js';

export type Operation = () => Promise<void>;

export interface WorkloadContext {
  client: KvClient;
  /** Written values (random bytes, so storage compression flatters nothing). */
  value: Uint8Array;
  /** Keys that exist (preloaded) for the read workloads. */
  readKeys: readonly string[];
  /** Distinguishes this run's and this phase's keys: every put writes a key never written before. */
  keyPrefix: string;
}

/** A fresh operation source; puts number their keys, reads cycle through the preloaded keys. */
export function makeOperation(workload: Workload, ctx: WorkloadContext, phase: string): Operation {
  let n = 0;
  const { client, value, readKeys } = ctx;
  switch (workload) {
    case 'put-sync':
    case 'put-async': {
      const durability = workload === 'put-sync' ? 'sync' : 'async';
      const prefix = `${ctx.keyPrefix}/${phase}/`;
      return async () => {
        await client.put(prefix + (n++).toString(36), value, { durability });
      };
    }
    case 'get-linearizable':
    case 'get-lease':
    case 'get-follower': {
      const consistency = workload === 'get-linearizable' ? 'linearizable' : workload === 'get-lease' ? 'lease' : 'follower';
      if (readKeys.length === 0) throw new RangeError('read workloads need preloaded keys');
      return async () => {
        const item = await client.get(readKeys[n++ % readKeys.length]!, { consistency });
        // A read that finds nothing measured a different (cheaper) path than the one reported.
        if (item === undefined) throw new Error(`preloaded key missing on a ${consistency} read`);
      };
    }
  }
}
