import { createServer, type Server } from 'node:net';

/**
 * `count` distinct loopback ports that were free a moment ago: bind 127.0.0.1:0 (all held open
 * together, so the OS cannot hand out the same one twice), read the ports, close. Another process
 * could take one before the node binds it; the node then fails at startup with its own "address in
 * use" log line, which the bench prints — rare and obvious, so no retry loop hides it.
 */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.unref();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    return a && typeof a === 'object' ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  if (ports.some((p) => p === 0)) throw new Error('the OS gave no port for 127.0.0.1:0');
  return ports;
}
