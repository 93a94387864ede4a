// Environment for node processes this package starts (the cluster launcher, the scale bench).
//
// glibc raises its mmap threshold each time a large mmapped block is freed, so after a while the
// ~1 MiB buffers a node churns through (Raft messages, snapshot records, log reads) come from the
// main heap, whose freed holes between long-lived blocks are never returned: RSS creeps up with the
// work done, not with what is live. A fixed threshold keeps such buffers mmapped and returned on
// free (the 512 MB scale bench: followers' peak RSS 415-422 MB without, 343-354 MB with). glibc
// reads it at process start, so `quorumkv serve` started otherwise needs it in its environment.
export const NODE_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({ MALLOC_MMAP_THRESHOLD_: '131072' });

/** `env` plus NODE_MALLOC_ENV where `env` does not set those variables itself. */
export function withNodeMallocEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const [k, v] of Object.entries(NODE_MALLOC_ENV)) if (out[k] === undefined) out[k] = v;
  return out;
}
