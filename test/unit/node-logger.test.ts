// The node's log records: JSON with `node` and `pid` once each even when a call site repeats them,
// or one human line each with --log-format pretty. Run in a child process: the logger writes to fd 2.
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TSX = import.meta.resolve('tsx');
const LOGGER = new URL('../../src/process/node-logger.ts', import.meta.url).href;

function logWith(format: 'json' | 'pretty', level = 'info'): Promise<string> {
  const script = `
    const { createNodeLogger } = await import(${JSON.stringify(LOGGER)});
    const log = createNodeLogger({ nodeId: 'n7', level: ${JSON.stringify(level)}, format: ${JSON.stringify(format)} });
    log.info({ event: 'serving', node: 'n7', pid: process.pid, clientAddress: '127.0.0.1:1' }, 'node serving');
    log.debug({ event: 'noise' }, 'debug record');
    log.warn({ peer: 'n2', details: 'connection refused' }, 'raft stream to peer failed');
  `;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', TSX, '--input-type=module', '-e', script],
      { timeout: 20_000, cwd: fileURLToPath(new URL('../..', import.meta.url)) },
      (err, _stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stderr)),
    );
  });
}

test('JSON records carry node and pid once, even when the call site passes them too', async (t) => {
  const lines = (await logWith('json')).trim().split('\n');
  t.is(lines.length, 2, 'info and warn; debug is below the level');
  for (const line of lines) {
    t.is(line.split('"node":').length - 1, 1, line);
    t.is(line.split('"pid":').length - 1, 1, line);
  }
  t.like(JSON.parse(lines[0]!), { node: 'n7', event: 'serving', msg: 'node serving', clientAddress: '127.0.0.1:1', level: 30 });
});

test('pretty records are one human line each, and --log-level debug lets debug records through', async (t) => {
  const lines = (await logWith('pretty', 'debug')).trim().split('\n');
  t.is(lines.length, 3);
  t.regex(lines[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: node serving /);
  t.regex(lines[1]!, /DEBUG: debug record/);
  t.regex(lines[2]!, /WARN: raft stream to peer failed .*connection refused/);
  t.false(
    lines.some((l) => l.startsWith('{')),
    'no JSON in pretty mode',
  );
});

test('a call site field that differs from the base is kept under another name, not dropped', async (t) => {
  const script = `
    const { createNodeLogger } = await import(${JSON.stringify(LOGGER)});
    createNodeLogger({ nodeId: 'n7', level: 'info', format: 'json' }).warn({ pid: 1, node: 'n2' }, 'about another process');
  `;
  const line = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { timeout: 20_000 }, (err, _o, stderr) =>
      err ? reject(err) : resolve(stderr.trim()),
    ),
  );
  t.is(line.split('"pid":').length - 1, 1);
  t.like(JSON.parse(line), { node: 'n7', nodeField: 'n2', pidField: 1 });
});
