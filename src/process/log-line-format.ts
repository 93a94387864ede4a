// Turns a node's structured (pino JSON) log line into one short human line for the cluster
// launcher's terminal. Anything that is not a pino record passes through unchanged.

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line carries or that the prefix already shows. */
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'node', 'id', 'event', 'v']);

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /\s/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

export function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof record.level !== 'number' || typeof record.time !== 'number') return line;
  const time = new Date(record.time).toISOString().slice(11, 23);
  const level = LEVELS[record.level] ?? String(record.level);
  const message = typeof record.msg === 'string' ? record.msg : String(record.event ?? '');
  const fields = Object.entries(record)
    .filter(([key, value]) => !OMITTED.has(key) && value !== undefined && !(key === 'event' && value === message))
    .map(([key, value]) => `${key}=${formatValue(value)}`);
  return [time, level.padEnd(5), message, ...fields].join(' ');
}
