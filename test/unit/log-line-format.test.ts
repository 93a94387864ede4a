import test from 'ava';
import { formatLogLine } from '../../src/process/log-line-format.js';

test('a pino record becomes time, level, message and its own fields', (t) => {
  const line = JSON.stringify({
    level: 40,
    time: Date.UTC(2026, 0, 1, 12, 34, 56, 789),
    pid: 1,
    name: 'quorumkv',
    node: 'n1',
    event: 'log.slow_fsync',
    msg: 'log.slow_fsync',
    ms: 193,
    file: 'a b',
  });
  t.is(formatLogLine(line), '12:34:56.789 WARN  log.slow_fsync ms=193 file="a b"');
});

test('lines that are not pino records pass through unchanged', (t) => {
  for (const line of ['plain text', '{"event":"ready","id":"n1"}', '{not json', '']) t.is(formatLogLine(line), line);
});
