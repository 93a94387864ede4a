// The node's pino logger: one JSON record per event with `node` and `pid` once each (fields a call
// site repeats are dropped in favour of the base), or human lines through pino-pretty.
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

export interface NodeLoggerOptions {
  nodeId: string;
  level: string;
  /** Default: pretty on a terminal, JSON otherwise (a file, a pipe, a log collector). */
  format?: LogFormat;
}

/** Keys the base carries on every record; a call site's copy would make a duplicate JSON key. */
const BASE_KEYS = ['node', 'pid', 'name'] as const;

export function createNodeLogger(options: NodeLoggerOptions): Logger {
  const format = options.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const base: Record<(typeof BASE_KEYS)[number], unknown> = { node: options.nodeId, pid: process.pid, name: 'quorumkv' };
  const pinoOptions = {
    name: 'quorumkv',
    level: options.level,
    base: { node: options.nodeId, pid: process.pid },
    formatters: {
      // A repeated base key is dropped when it says the same, kept as `<key>Field` when it does not.
      log(fields: Record<string, unknown>): Record<string, unknown> {
        if (!BASE_KEYS.some((k) => k in fields)) return fields;
        const out = { ...fields };
        for (const k of BASE_KEYS) {
          if (!(k in out)) continue;
          if (out[k] !== base[k]) out[`${k}Field`] = out[k];
          delete out[k];
        }
        return out;
      },
    },
  };
  if (format === 'pretty') {
    // Synchronous, like the JSON destination: a record written just before exit is not lost.
    return pino(
      pinoOptions,
      pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY, ignore: 'pid,hostname,name,node', singleLine: true, translateTime: 'HH:MM:ss.l' }),
    );
  }
  return pino(pinoOptions, pino.destination(2));
}
