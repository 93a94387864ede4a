// Terminal progress: a cli-progress bar on a TTY, plain timestamped lines otherwise (CI logs).
import cliProgress from 'cli-progress';

export interface Progress {
  /** Move to the next step and name it. */
  step(label: string): void;
  /** Extra detail for the current step (e.g. ops so far); ignored when not a TTY. */
  detail(text: string): void;
  /** A line that must stay visible (warnings). */
  log(line: string): void;
  stop(): void;
}

export function createProgress(total: number, tty: boolean = process.stdout.isTTY === true): Progress {
  return tty ? new BarProgress(total) : new LineProgress(total);
}

class BarProgress implements Progress {
  private readonly multi: cliProgress.MultiBar;
  private readonly bar: cliProgress.SingleBar;
  private done = 0;
  private label = '';
  private stopped = false;

  constructor(total: number) {
    this.multi = new cliProgress.MultiBar(
      {
        format: ' {bar} {value}/{total} | {label} {detail}',
        hideCursor: true,
        clearOnComplete: true,
        stopOnComplete: false,
        barsize: 24,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multi.create(total, 0, { label: 'starting', detail: '' });
  }

  step(label: string): void {
    if (this.label) this.done++;
    this.label = label;
    this.bar.update(this.done, { label, detail: '' });
  }

  detail(text: string): void {
    this.bar.update(this.done, { label: this.label, detail: text });
  }

  log(line: string): void {
    this.multi.log(`${line}\n`);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar.update(this.bar.getTotal(), { label: 'done', detail: '' });
    this.multi.stop();
  }
}

class LineProgress implements Progress {
  private index = 0;
  private readonly t0 = Date.now();

  constructor(private readonly total: number) {}

  private stamp(): string {
    return `${((Date.now() - this.t0) / 1000).toFixed(1).padStart(6)}s`;
  }

  step(label: string): void {
    this.index++;
    process.stdout.write(`${this.stamp()} [${this.index}/${this.total}] ${label}\n`);
  }

  detail(): void {}

  log(line: string): void {
    process.stdout.write(`${this.stamp()} ${line}\n`);
  }

  stop(): void {}
}
