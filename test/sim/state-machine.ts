// The simulator's state machine: an in-memory KV applied from committed entries. It keeps a hash
// chain over everything it applied so that two nodes (or a node and a snapshot) can be compared
// by one number, and it serializes into snapshot data.

import { decodeConfChange } from '../../src/raft/conf-change-codec.js';
import type { Entry } from '../../src/raft/types.js';
import type { KvValue } from './checkers.js';
import { fnv1a } from './prng.js';

const CHAIN_START = 0x811c9dc5;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const digests = new WeakMap<Entry, string>();

/** Client commands are UTF-8 text 'w|<key>|<value>' (values are unique per run). */
export function encodeWrite(key: string, value: string): Uint8Array {
  return encoder.encode(`w|${key}|${value}`);
}

/** A stable, human-readable identity for an entry's payload (cached: entries are immutable). */
export function digestOf(entry: Entry): string {
  let d = digests.get(entry);
  if (d !== undefined) return d;
  if (entry.type === 'conf') {
    try {
      const cc = decodeConfChange(entry.data);
      d = `conf|${cc.type}|${cc.nodeId}`;
    } catch {
      d = 'conf|malformed';
    }
  } else {
    d = entry.data.length === 0 ? 'noop' : decoder.decode(entry.data);
  }
  digests.set(entry, d);
  return d;
}

export function chainNext(chain: number, index: number, term: number, digest: string): number {
  return fnv1a(`${index}:${term}:${digest}`, chain);
}

interface SnapshotBody {
  applied: number;
  chain: number;
  kv: [string, KvValue][];
}

export class SimStateMachine {
  applied = 0;
  chain = CHAIN_START;
  kv = new Map<string, KvValue>();

  /** Apply one committed entry whose chain value the caller already computed with chainNext. */
  apply(entry: Entry, digest: string, chain: number): void {
    this.applied = entry.index;
    this.chain = chain;
    if (digest.startsWith('w|')) {
      const bar = digest.indexOf('|', 2);
      this.kv.set(digest.slice(2, bar), { value: digest.slice(bar + 1), index: entry.index });
    }
  }

  encode(): Uint8Array {
    const body: SnapshotBody = { applied: this.applied, chain: this.chain, kv: [...this.kv] };
    return encoder.encode(JSON.stringify(body));
  }

  /** Replace the contents with a snapshot's; empty data is the state before any entry. */
  restore(data: Uint8Array): void {
    if (data.length === 0) {
      this.applied = 0;
      this.chain = CHAIN_START;
      this.kv = new Map();
      return;
    }
    const body = JSON.parse(decoder.decode(data)) as SnapshotBody;
    this.applied = body.applied;
    this.chain = body.chain;
    this.kv = new Map(body.kv);
  }

  /** The chain value a snapshot's data claims, without restoring it. */
  static chainOf(data: Uint8Array): { applied: number; chain: number } {
    if (data.length === 0) return { applied: 0, chain: CHAIN_START };
    const body = JSON.parse(decoder.decode(data)) as SnapshotBody;
    return { applied: body.applied, chain: body.chain };
  }
}
