// One TCP proxy per directed peer link (node A dials node B through it, via A's
// `peerDialAddresses`). Cutting the link stops every byte both ways on A's connections to B, as a
// partition that drops packets would: nothing is refused or reset, the sender's buffers fill and its
// keepalive notices. Healing lets the held bytes flow again. No root needed.
import net from 'node:net';

/** Held connections while cut, beyond which new ones are closed (a redialling node must not grow this). */
const MAX_CONNECTIONS = 64;

export class LinkProxyError extends Error {
  override name = 'LinkProxyError';
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | undefined;
}

export class LinkProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private cutNow = false;
  private target: string | undefined;
  private port = 0;

  constructor(
    /** e.g. "n1->n2" (for messages). */
    readonly name: string,
  ) {}

  /** Listen on an ephemeral loopback port; resolves with "127.0.0.1:port". */
  async start(): Promise<string> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new LinkProxyError(`proxy ${this.name} cannot listen: ${e.message}`)));
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    return this.address;
  }

  get address(): string {
    if (!this.port) throw new LinkProxyError(`proxy ${this.name} is not listening; await start() first`);
    return `127.0.0.1:${this.port}`;
  }

  /** Where the link leads (the peer's real raft address); connections wait until it is known. */
  setTarget(address: string): void {
    this.target = address;
    if (!this.cutNow) for (const p of this.pairs) if (!p.upstream) this.connect(p);
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  cut(): void {
    this.cutNow = true;
    for (const p of this.pairs) {
      p.client.pause();
      p.upstream?.pause();
    }
  }

  heal(): void {
    this.cutNow = false;
    for (const p of this.pairs) {
      if (!p.upstream) this.connect(p);
      else {
        p.upstream.resume();
        p.client.resume();
      }
    }
  }

  async close(): Promise<void> {
    for (const p of this.pairs) this.drop(p);
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.pairs.size >= MAX_CONNECTIONS) {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    client.pause();
    const pair: Pair = { client, upstream: undefined };
    this.pairs.add(pair);
    client.on('error', () => this.drop(pair));
    client.on('close', () => this.drop(pair));
    if (!this.cutNow && this.target) this.connect(pair);
  }

  private connect(pair: Pair): void {
    const target = this.target;
    if (!target || pair.upstream) return;
    const i = target.lastIndexOf(':');
    const upstream = net.connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)) });
    upstream.setNoDelay(true);
    pair.upstream = upstream;
    upstream.on('error', () => this.drop(pair));
    upstream.on('close', () => this.drop(pair));
    this.forward(pair.client, upstream);
    this.forward(upstream, pair.client);
    if (this.cutNow) upstream.pause();
    else pair.client.resume();
  }

  private forward(from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk) => {
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => {
          if (!this.cutNow) from.resume();
        });
      }
    });
  }

  private drop(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
