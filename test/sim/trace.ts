// The simulation trace: one line per observable event. Lines are formatted lazily (most runs pass
// and only the last few lines are ever printed) unless the full trace was asked for.

import type { Message } from '../../src/raft/types.js';
import { fnv1a } from './prng.js';

export function formatMessage(m: Message): string {
  const head = `${m.from} -> ${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case 'app':
      return `${head} idx=${m.index} logTerm=${m.logTerm} n=${m.entries.length} commit=${m.commit}`;
    case 'appResp':
      return m.reject ? `${head} reject idx=${m.index} hint=${m.rejectHint} hintTerm=${m.rejectTerm ?? '-'}` : `${head} idx=${m.index}`;
    case 'vote':
    case 'preVote':
      return `${head} lastIdx=${m.index} lastTerm=${m.logTerm}${m.context ? ` ctx=${m.context}` : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head}${m.reject ? ' reject' : ' grant'}`;
    case 'heartbeat':
    case 'heartbeatResp':
      return `${head} commit=${m.commit}${m.context ? ` ctx=${m.context}` : ''}`;
    case 'snap':
      return `${head} snap=${m.snapshot?.meta.index ?? '?'}@${m.snapshot?.meta.term ?? '?'} voters=${m.snapshot?.meta.conf.voters.join(',') ?? ''}`;
    case 'readIndex':
    case 'readIndexResp':
      return `${head} idx=${m.index} ctx=${m.context ?? ''}`;
    default:
      return `${head} idx=${m.index}`;
  }
}

type Line = { t: number; text: string } | { t: number; msg: Message; prefix: string; suffix: string };

function render(line: Line): string {
  if ('text' in line) return `t=${line.t} ${line.text}`;
  return `t=${line.t} ${line.prefix}${formatMessage(line.msg)}${line.suffix}`;
}

export class Trace {
  private readonly ring: Line[] = [];
  private next = 0;
  private readonly all: string[] | undefined;

  constructor(
    readonly keepAll: boolean,
    private readonly tailSize = 50,
  ) {
    if (keepAll) this.all = [];
  }

  event(t: number, text: string): void {
    this.push({ t, text });
  }

  message(t: number, msg: Message, prefix = '', suffix = ''): void {
    this.push({ t, msg, prefix, suffix });
  }

  private push(line: Line): void {
    if (this.all) this.all.push(render(line));
    if (this.ring.length < this.tailSize) this.ring.push(line);
    else this.ring[this.next] = line;
    this.next = (this.next + 1) % this.tailSize;
  }

  tail(): string[] {
    const ordered = this.ring.length < this.tailSize ? this.ring : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
    return ordered.map(render);
  }

  lines(): string[] {
    return this.all ? [...this.all] : this.tail();
  }
}

export function traceHash(lines: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const line of lines) h = fnv1a(`${line}\n`, h);
  return `${h.toString(16).padStart(8, '0')}:${lines.length}`;
}
