// A minimal Prometheus text-format registry: counters, gauges and fixed-bucket histograms.
// Enough for /metrics without another dependency.

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {
    this.counts = new Array(buckets.length).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]!) this.counts[i]!++;
    }
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (let i = 0; i < this.buckets.length; i++) {
      lines.push(`${this.name}_bucket{le="${this.buckets[i]}"} ${this.counts[i]}`);
    }
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${this.name}_sum ${this.sum}`);
    lines.push(`${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export class Counter {
  private value = 0;
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(by = 1): void {
    this.value += by;
  }
  get(): number {
    return this.value;
  }
  render(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n${this.name} ${this.value}`;
  }
}

export function renderGauge(name: string, help: string, value: number, labels?: Record<string, string>): string {
  const l = labels
    ? `{${Object.entries(labels)
        .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
        .join(',')}}`
    : '';
  return `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name}${l} ${value}`;
}

/** Metrics the runtime records; process.ts renders them with the node's live gauges. */
export class NodeMetrics {
  /** fsync (storage.save) latency in seconds. */
  readonly fsyncSeconds = new Histogram(
    'quorumkv_fsync_seconds',
    'Latency of one durable log save (group commit)',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly proposals = new Counter('quorumkv_proposals_total', 'Write proposals accepted by this node as leader');
  readonly proposalsFailed = new Counter('quorumkv_proposals_failed_total', 'Write proposals that failed (lost, not leader, deadline, overload)');
  readonly readIndexRounds = new Counter('quorumkv_read_index_rounds_total', 'ReadIndex rounds issued (each may serve many reads)');
  readonly snapshots = new Counter('quorumkv_snapshots_total', 'Snapshots taken by this node');
  readonly snapshotsInstalled = new Counter('quorumkv_snapshots_installed_total', 'Snapshots received from a leader and installed');
  readonly leaderChanges = new Counter('quorumkv_leader_changes_total', 'Leader changes observed by this node');
  readonly appliedEntries = new Counter('quorumkv_applied_entries_total', 'Log entries applied to the state machine');
}
