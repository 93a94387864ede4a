// A bad cluster config fails fast with a ConfigError naming the file and the field.
import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, DEFAULT_RAFT_SETTINGS, loadConfig, parseConfig, selectNode } from '../../src/process/config.js';

const FILE = 'cluster.test.json';

function base(): any {
  return {
    cluster: 'test',
    nodes: [
      { id: 'n1', raftAddress: '127.0.0.1:7101', clientAddress: '127.0.0.1:7001', dataDir: 'data/n1' },
      { id: 'n2', raftAddress: '127.0.0.1:7102', clientAddress: '127.0.0.1:7002', dataDir: 'data/n2' },
      { id: 'n3', raftAddress: '127.0.0.1:7103', clientAddress: '127.0.0.1:7003', dataDir: 'data/n3' },
    ],
    raft: { tickMs: 10, electionTicks: 30, heartbeatTicks: 3, snapshotEntries: 10000 },
  };
}

function rejects(t: any, mutate: (c: any) => void, field: string, detail: RegExp): void {
  const c = base();
  mutate(c);
  const err = t.throws(() => parseConfig(JSON.stringify(c), FILE), { instanceOf: ConfigError }) as ConfigError;
  t.is(err.file, FILE);
  t.is(err.field, field);
  t.true(err.message.startsWith(`${FILE}: ${field}: `), err.message);
  t.regex(err.detail, detail);
}

test('the example config is valid', async (t) => {
  const config = await loadConfig(path.resolve('cluster.example.json'));
  t.is(config.nodes.length, 3);
  t.is(config.raft.electionTicks, 30);
});

test('a valid config gets defaults and absolute dataDirs relative to the file', (t) => {
  const c = base();
  delete c.raft;
  const config = parseConfig(JSON.stringify(c), '/etc/quorumkv/cluster.json');
  t.deepEqual(config.raft, { ...DEFAULT_RAFT_SETTINGS });
  t.is(config.nodes[0]!.dataDir, '/etc/quorumkv/data/n1');
  t.false(config.nodes[0]!.learner);
  t.false(config.join);
  t.is(config.logLevel, 'info');
});

test('missing field', (t) => rejects(t, (c) => delete c.nodes[1].clientAddress, 'nodes[1].clientAddress', /missing/));
test('missing nodes', (t) => rejects(t, (c) => delete c.nodes, 'nodes', /missing/));
test('empty nodes', (t) => rejects(t, (c) => (c.nodes = []), 'nodes', /at least one/));
test('wrong type', (t) => rejects(t, (c) => (c.raft.tickMs = '10'), 'raft.tickMs', /must be an integer/));
test('wrong type of a node', (t) => rejects(t, (c) => (c.nodes[2] = 'n3'), 'nodes[2]', /must be an object/));
test('duplicate id', (t) => rejects(t, (c) => (c.nodes[2].id = 'n1'), 'nodes[2].id', /duplicate id n1 \(also nodes\[0\]\.id\)/));
test('duplicate address', (t) =>
  rejects(t, (c) => (c.nodes[1].clientAddress = '127.0.0.1:7001'), 'nodes[1].clientAddress', /duplicate address 127\.0\.0\.1:7001/));
test('raft and client address clash', (t) => rejects(t, (c) => (c.nodes[1].raftAddress = '127.0.0.1:7001'), 'nodes[1].raftAddress', /duplicate address/));
test('duplicate port behind a wildcard host', (t) =>
  rejects(t, (c) => (c.nodes[1].clientAddress = '0.0.0.0:7001'), 'nodes[1].clientAddress', /duplicate port 7001/));
test('address without a port', (t) => rejects(t, (c) => (c.nodes[0].raftAddress = '127.0.0.1'), 'nodes[0].raftAddress', /host:port/));
test('port out of range', (t) => rejects(t, (c) => (c.nodes[0].raftAddress = '127.0.0.1:70000'), 'nodes[0].raftAddress', /between 1 and 65535/));
test('heartbeat not below election', (t) => rejects(t, (c) => (c.raft.heartbeatTicks = 30), 'raft.heartbeatTicks', /must be less than raft\.electionTicks/));
test('non-positive tick', (t) => rejects(t, (c) => (c.raft.tickMs = 0), 'raft.tickMs', /between 1 and/));
test('fractional number', (t) => rejects(t, (c) => (c.raft.electionTicks = 10.5), 'raft.electionTicks', /integer/));
test('unknown field (a typo)', (t) => rejects(t, (c) => (c.nodes[0].dataDri = 'x'), 'nodes[0].dataDri', /unknown field/));
test('shared data directory', (t) => rejects(t, (c) => (c.nodes[1].dataDir = './data/n1'), 'nodes[1].dataDir', /duplicate data directory/));
test('bad node id', (t) => rejects(t, (c) => (c.nodes[0].id = 'n 1'), 'nodes[0].id', /letters, digits/));
test('only learners', (t) =>
  rejects(
    t,
    (c) => {
      for (const n of c.nodes) n.learner = true;
    },
    'nodes',
    /at least one node must be a voter/,
  ));
test('preferred leader unknown', (t) => rejects(t, (c) => (c.preferredLeader = 'n9'), 'preferredLeader', /unknown node id n9/));
test('bad log level', (t) => rejects(t, (c) => (c.logLevel = 'loud'), 'logLevel', /not one of/));

test('peer dial-address overrides are kept per node and checked', (t) => {
  const c = base();
  c.nodes[0].peerDialAddresses = { n2: '127.0.0.1:9102', n3: '127.0.0.1:9103' };
  const config = parseConfig(JSON.stringify(c), FILE);
  t.deepEqual(config.nodes[0]!.peerDialAddresses, { n2: '127.0.0.1:9102', n3: '127.0.0.1:9103' });
  t.is(config.nodes[1]!.peerDialAddresses, undefined);
});
test('peer dial address without a port', (t) =>
  rejects(t, (c) => (c.nodes[0].peerDialAddresses = { n2: '127.0.0.1' }), 'nodes[0].peerDialAddresses.n2', /host:port/));
test('peer dial address for the node itself', (t) =>
  rejects(t, (c) => (c.nodes[0].peerDialAddresses = { n1: '127.0.0.1:9101' }), 'nodes[0].peerDialAddresses.n1', /does not dial itself/));

test('not JSON', (t) => {
  const err = t.throws(() => parseConfig('{ nodes: [', FILE), { instanceOf: ConfigError });
  t.regex(err!.message, /^cluster\.test\.json: \(file\): not valid JSON/);
});

test('an unknown node id asked for is named with the file and --node', (t) => {
  const config = parseConfig(JSON.stringify(base()), FILE);
  t.is(selectNode(config, 'n2').clientAddress, '127.0.0.1:7002');
  const err = t.throws(() => selectNode(config, 'n9'), { instanceOf: ConfigError });
  t.is(err!.message, `${FILE}: --node: unknown node id n9 (the config defines n1, n2, n3)`);
});

test('loadConfig resolves dataDir against the file directory and names a missing file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'qkv-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'c.json');
  await writeFile(file, JSON.stringify(base()));
  const config = await loadConfig(file);
  t.is(config.nodes[2]!.dataDir, path.join(dir, 'data', 'n3'));
  const missing = path.join(dir, 'nope.json');
  const err = await t.throwsAsync(loadConfig(missing), { instanceOf: ConfigError });
  t.is(err!.file, missing);
  t.regex(err!.message, /cannot read: ENOENT/);
});
