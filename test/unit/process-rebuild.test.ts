// `quorumkv rebuild`: moves a stopped node's data dir aside (never deletes it) and refuses when the
// node still runs, when there is no other voter to rebuild from, or when there is nothing to move.
import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { runCli } from '../../src/cli/run.js';
import { rebuildCommand } from '../../src/process/commands.js';
import { RebuildError, rebuildNode } from '../../src/process/rebuild.js';

async function setup(t: ExecutionContext, nodes = ['n1', 'n2', 'n3']): Promise<{ root: string; config: string }> {
  const root = await mkdtemp(path.join(tmpdir(), 'qkv-rebuild-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const config = path.join(root, 'cluster.json');
  await writeFile(
    config,
    JSON.stringify({
      cluster: 'rebuild-test',
      nodes: nodes.map((id, i) => ({ id, raftAddress: `127.0.0.1:${7001 + i}`, clientAddress: `127.0.0.1:${8001 + i}`, dataDir: path.join(root, id) })),
    }),
  );
  return { root, config };
}

async function nodeData(root: string, id: string): Promise<void> {
  const db = new Level(path.join(root, id, 'kv'));
  await db.open();
  await db.put('k', 'v');
  await db.close();
  await mkdir(path.join(root, id, 'raft'), { recursive: true });
  await writeFile(path.join(root, id, 'raft', 'log-0000000001.wal'), 'log bytes');
}

test('moves the data dir to <dataDir>.corrupt-<UTC timestamp> and keeps every file', async (t) => {
  const { root, config } = await setup(t);
  await nodeData(root, 'n2');
  const r = await rebuildNode(config, 'n2', { now: () => new Date('2026-01-02T03:04:05.678Z') });
  t.is(r.movedTo, path.join(root, 'n2.corrupt-20260102T030405Z'));
  t.deepEqual((await readdir(root)).sort(), ['cluster.json', 'n2.corrupt-20260102T030405Z']);
  t.is(await readFile(path.join(r.movedTo, 'raft', 'log-0000000001.wal'), 'utf8'), 'log bytes');
  // A second rebuild within the same second does not overwrite the first copy.
  await nodeData(root, 'n2');
  const again = await rebuildNode(config, 'n2', { now: () => new Date('2026-01-02T03:04:05.999Z') });
  t.is(again.movedTo, `${r.movedTo}-2`);
});

test('refuses while the node holds its LevelDB lock', async (t) => {
  const { root, config } = await setup(t);
  await nodeData(root, 'n1');
  const db = new Level(path.join(root, 'n1', 'kv'));
  await db.open(); // this process now holds the lock, as a running node does
  t.teardown(() => db.close());
  await t.throwsAsync(rebuildNode(config, 'n1'), { instanceOf: RebuildError, message: /node n1 is still running .*stop it first/ });
  t.true((await readdir(root)).includes('n1'));
});

test('refuses without another voter, without a data dir, and for an unknown node', async (t) => {
  const single = await setup(t, ['solo']);
  await nodeData(single.root, 'solo');
  await t.throwsAsync(rebuildNode(single.config, 'solo'), { instanceOf: RebuildError, message: /only voter .* backup/ });
  const { config } = await setup(t);
  await t.throwsAsync(rebuildNode(config, 'n3'), { instanceOf: RebuildError, message: /does not exist: nothing to move aside/ });
  await t.throwsAsync(rebuildNode(config, 'n9'), { name: 'ConfigError', message: /unknown node id n9/ });
});

test('the CLI dispatches rebuild to the node commands and checks its options', async (t) => {
  const out: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => out.push(s) }, env: {} } as unknown as Parameters<
    typeof runCli
  >[1];
  const calls: string[] = [];
  const commands = {
    serve: async () => 0,
    cluster: async () => 0,
    rebuild: async (a: { values: { node?: string; config?: string } }) => {
      calls.push(`${a.values.config} ${a.values.node}`);
      return 0;
    },
  };
  t.is(await runCli(['rebuild', '--config', 'c.json', '--node', 'n2'], io, commands), 0);
  t.deepEqual(calls, ['c.json n2']);
  t.is(await runCli(['rebuild', '--config', 'c.json', '--node', 'n2', '--limit', '3'], io, commands), 2);
  t.is(await runCli(['rebuild', '--config', 'c.json', '--node', 'n2'], io, { serve: async () => 0, cluster: async () => 0 }), 2);
  await t.throwsAsync(rebuildCommand({ command: 'rebuild', positionals: [], values: { config: 'c.json' } }), { message: /rebuild needs --node ID/ });
});
