// Keeps a misbehaving or unreachable peer from flooding the log: one line per key per interval,
// carrying how many similar events were suppressed since the last line.
export interface TransportLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

export const silentLogger: TransportLogger = {
  info() {},
  warn() {},
  error() {},
};

export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: TransportLogger,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    const t = this.now();
    const seen = this.last.get(key);
    if (seen && t - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    this.last.set(key, { at: t, suppressed: 0 });
    this.logger.warn(seen?.suppressed ? { ...obj, suppressed: seen.suppressed } : obj, msg);
  }

  /** Forget a key (e.g. a connection recovered), so its next failure is logged at once. */
  reset(key: string): void {
    this.last.delete(key);
  }
}
