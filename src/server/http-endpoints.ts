// The node's HTTP endpoints: / (status page), /api/cluster (what the page shows, as JSON),
// /healthz (process alive), /readyz (knows a leader and has applied what it knows is committed),
// /metrics (Prometheus text from the node's own prom-client registry) and /ui/* (uPlot, served
// from node_modules: the page needs no network beyond this node).
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { RaftNode } from '../runtime/raft-node.js';
import type { NodePrometheus } from './node-metrics.js';
import { STATUS_PAGE_HTML } from './status-page.js';

export interface HttpEndpoints {
  /** host:port actually bound (the port is resolved when 0 was asked for). */
  readonly address: string;
  close(): Promise<void>;
}

/** One member as this node sees it, for the status page. */
export interface ClusterMemberView {
  id: string;
  clientAddress: string;
  voter: boolean;
  healthy: boolean;
  role?: string;
  term?: number;
  leaderId?: string;
  commitIndex?: number;
  appliedIndex?: number;
  /** Entries its applied index trails the leader's commit index. */
  lag?: number;
  error?: string;
}

export interface HttpEndpointsOptions {
  /** The node's metrics (its own registry). */
  metrics?: NodePrometheus;
  /** Every member's status as this node can see it (the process probes them); default: only itself. */
  clusterView?: () => Promise<ClusterMemberView[]>;
}

const UI_FILES: Record<string, { module: string; type: string }> = {
  '/ui/uplot.js': { module: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/ui/uplot.css': { module: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};
const uiCache = new Map<string, Buffer>();

function uiFile(path: string): Buffer {
  let body = uiCache.get(path);
  if (!body) {
    body = readFileSync(createRequire(import.meta.url).resolve(UI_FILES[path]!.module));
    uiCache.set(path, body);
  }
  return body;
}

/**
 * Serves the endpoints on `bind` (host:port; port 0 = any free port). `source` may be a getter so
 * the port can be bound before the node exists (a taken port then fails the start before the data
 * dir is touched); until it returns the node, /healthz answers ok and everything else 503.
 */
export async function startHttpEndpoints(
  source: RaftNode | (() => RaftNode | undefined),
  bind: string,
  options: HttpEndpointsOptions = {},
): Promise<HttpEndpoints> {
  const server = createServer((req, res) => {
    const node = typeof source === 'function' ? source() : source;
    const url = (req.url ?? '/').split('?')[0]!;
    if (url === '/healthz') res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    else if (url === '/favicon.ico') res.writeHead(204).end();
    else if (UI_FILES[url]) res.writeHead(200, { 'content-type': UI_FILES[url]!.type, 'cache-control': 'max-age=3600' }).end(uiFile(url));
    else if (url === '/metrics' && options.metrics) void sendMetrics(options.metrics, res);
    else if (node) handleHttp(node, url, req, res, options);
    else res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready: the node is still opening its data dir\n');
  });
  const i = bind.lastIndexOf(':');
  const host = bind.slice(0, i);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(bind.slice(i + 1)), host, () => resolve());
  });
  const bound = server.address();
  const port = bound && typeof bound === 'object' ? bound.port : Number(bind.slice(i + 1));
  return {
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function sendMetrics(metrics: NodePrometheus, res: ServerResponse): Promise<void> {
  try {
    const body = await metrics.registry.metrics();
    res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`);
  }
}

function handleHttp(node: RaftNode, url: string, _req: IncomingMessage, res: ServerResponse, options: HttpEndpointsOptions): void {
  if (url === '/readyz') {
    const ok = node.isCaughtUp();
    res
      .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
      .end(ok ? 'ready\n' : 'not ready: no leader known, applying behind commit, or its stored data is damaged (see the log)\n');
  } else if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(STATUS_PAGE_HTML);
  } else if (url === '/api/cluster') {
    void clusterJson(node, options).then(
      (doc) => res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(doc)),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`cluster view failed: ${err.message}\n`),
    );
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /, /healthz, /readyz or /metrics\n');
  }
}

async function selfView(node: RaftNode): Promise<ClusterMemberView[]> {
  const s = await node.status();
  return [
    {
      id: s.id,
      clientAddress: s.clientAddress,
      voter: true,
      healthy: s.leaderId !== '',
      role: s.role,
      term: s.term,
      leaderId: s.leaderId,
      commitIndex: s.commitIndex,
      appliedIndex: s.appliedIndex,
    },
  ];
}

async function clusterJson(node: RaftNode, options: HttpEndpointsOptions): Promise<object> {
  const [members, totals] = await Promise.all([(options.clusterView ?? (() => selfView(node)))(), options.metrics?.requestTotals()]);
  const s = node.raftStatus();
  const leaderCommit = members.find((m) => m.role === 'leader')?.commitIndex;
  for (const m of members) {
    if (leaderCommit !== undefined && m.appliedIndex !== undefined) m.lag = Math.max(0, leaderCommit - m.appliedIndex);
  }
  return {
    self: node.id,
    time: Date.now(),
    leaderId: s.leaderId,
    term: s.term,
    members,
    leaderHistory: options.metrics?.leaderHistory ?? [],
    requests: totals ?? { requests: 0, seconds: 0 },
  };
}
