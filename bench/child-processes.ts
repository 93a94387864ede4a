// Stopping the server processes a bench started (quorumkv nodes, etcd members).
import type { ChildProcess } from 'node:child_process';

export function isRunning(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

/** SIGTERM to every child still running, SIGKILL to any that outlives `graceMs`; resolves once all exited. */
export async function stopChildren(children: readonly { proc: ChildProcess; exited: Promise<void> }[], graceMs: number): Promise<void> {
  for (const c of children) if (isRunning(c.proc)) c.proc.kill('SIGTERM');
  await Promise.all(
    children.map(async (c) => {
      if (!isRunning(c.proc)) return;
      const timer = setTimeout(() => {
        if (isRunning(c.proc)) c.proc.kill('SIGKILL');
      }, graceMs);
      await c.exited;
      clearTimeout(timer);
    }),
  );
}
