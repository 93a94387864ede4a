// One progress line every few seconds for a long transfer (snapshot write, send, receive, install):
// bytes so far, the rate and, when the total is known, the ETA. Both ends of a transfer log it, so
// an operator sees a rebuild converge (or stall) without guessing.
import { performance } from 'node:perf_hooks';

export interface ProgressLogger {
  info(fields: object, message: string): void;
}

const DEFAULT_EVERY_MS = 2000;
const MB = 1024 * 1024;

export class ProgressLog {
  private readonly started = performance.now();
  private lastLogged = this.started;

  constructor(
    private readonly logger: ProgressLogger | undefined,
    private readonly event: string,
    private readonly fields: object,
    private readonly totalBytes?: number,
    private readonly everyMs = DEFAULT_EVERY_MS,
  ) {}

  private line(bytes: number, now: number): object {
    const secs = Math.max((now - this.started) / 1000, 1e-3);
    const rate = bytes / secs;
    const eta = this.totalBytes !== undefined && rate > 0 ? Math.max(0, (this.totalBytes - bytes) / rate) : undefined;
    return {
      event: this.event,
      ...this.fields,
      bytes,
      ...(this.totalBytes !== undefined ? { totalBytes: this.totalBytes, percent: Math.round((100 * bytes) / Math.max(this.totalBytes, 1)) } : {}),
      mbPerSec: Math.round((rate / MB) * 10) / 10,
      ...(eta !== undefined ? { etaSec: Math.round(eta) } : {}),
      elapsedMs: Math.round(now - this.started),
    };
  }

  update(bytes: number): void {
    const now = performance.now();
    if (now - this.lastLogged < this.everyMs) return;
    this.lastLogged = now;
    this.logger?.info(this.line(bytes, now), `${this.event.replaceAll('_', ' ')} progress`);
  }

  done(bytes: number, extra: object = {}): void {
    this.logger?.info({ ...this.line(bytes, performance.now()), ...extra, done: true }, `${this.event.replaceAll('_', ' ')} done`);
  }
}
