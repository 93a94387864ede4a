// Shared by the snapshot storage tests: a temp dir removed after the test, and put commands for
// keys k000001... as committed entries.
import type { ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../src/raft/types.js';
import { encodeCommand } from '../../src/storage/index.js';

const te = new TextEncoder();

export async function tempDir(t: ExecutionContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Entries from..from+n-1 (term 1), each a put of k<index, 6 digits> = `${value}${index}${suffix}` by client c1. */
export function putEntries(from: number, n: number, value = 'v', suffix = ''): Entry[] {
  return Array.from({ length: n }, (_, i) => ({
    index: from + i,
    term: 1,
    type: 'normal' as const,
    data: encodeCommand({
      clientId: 'c1',
      seq: from + i,
      firstUnacked: from + i,
      op: { op: 'put', key: te.encode(`k${String(from + i).padStart(6, '0')}`), value: te.encode(`${value}${from + i}${suffix}`) },
    }),
  }));
}
