// A TLS cluster with auth on (certificates from `quorumkv certs`, users with scrypt-hashed
// passwords and roles): peers that cannot prove a member's identity are refused, clients without
// credentials get UNAUTHENTICATED, clients beyond their role PERMISSION_DENIED, and nothing changes.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createCerts } from '../../src/process/certs.js';
import { loadConfig } from '../../src/process/config.js';
import { hashPassword, newToken } from '../../src/server/auth.js';
import { connect, PermissionDeniedError, UnauthenticatedError, type ConnectOptions, type KvClient } from '../../src/index.js';
import { httpGet, ProcessCluster, type NodeHandle } from './harness.js';
import { message, RaftForger } from './raft-forger.js';

let cluster: ProcessCluster;
let ca: Buffer;
let clusterName: string;
let token: string;
const clients: KvClient[] = [];
const forgers: RaftForger[] = [];

async function client(credentials?: ConnectOptions['credentials']): Promise<KvClient> {
  const kv = await connect({
    endpoints: [...cluster.nodes.values()].map((h) => h.clientAddress),
    tls: { ca },
    deadlineMs: 8000,
    ...(credentials ? { credentials } : {}),
  });
  clients.push(kv);
  return kv;
}

async function metric(h: NodeHandle, name: string): Promise<number> {
  const { body } = await httpGet(h, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
}

async function snapshotOfCluster(admin: KvClient): Promise<string> {
  const st = await admin.status();
  const terms = st
    .map((s) => `${s.status?.id}:${s.status?.term}:${s.status?.leaderId}`)
    .sort()
    .join(',');
  const keys: string[] = [];
  for await (const item of admin.scanAll({})) keys.push(`${Buffer.from(item.key).toString()}=${item.text()}`);
  return `${terms} | ${keys.join(';')}`;
}

test.before(async () => {
  const { token: t, stored } = newToken();
  token = t;
  cluster = await ProcessCluster.start({
    size: 3,
    tls: {},
    users: {
      users: [
        { name: 'admin', password: await hashPassword('admin-pw'), roles: ['admin'] },
        { name: 'reader', password: await hashPassword('reader-pw'), roles: ['readonly'] },
        { name: 'app', tokens: [stored], roles: ['app-rw'] },
      ],
      roles: [{ name: 'app-rw', permissions: [{ access: 'readwrite', prefix: 'app/' }] }],
    },
  });
  const config = JSON.parse(await readFile(cluster.configPath, 'utf8')) as { cluster: string; tls: { ca: string } };
  ca = await readFile(config.tls.ca);
  clusterName = config.cluster;
  await cluster.waitForLeader();
});

test.after.always(async () => {
  for (const f of forgers) f.close();
  for (const c of clients) await c.close();
  await cluster?.close();
});

test.serial('unauthenticated clients get UNAUTHENTICATED and change nothing', async (t) => {
  const admin = await client({ username: 'admin', password: 'admin-pw' });
  await admin.put('app/seed', 'v');
  const before = await snapshotOfCluster(admin);
  const anonymous = await client();
  await t.throwsAsync(anonymous.put('app/x', 'evil'), { instanceOf: UnauthenticatedError });
  await t.throwsAsync(anonymous.get('app/seed'), { instanceOf: UnauthenticatedError });
  const wrong = await client({ username: 'admin', password: 'guess' });
  await t.throwsAsync(wrong.put('app/x', 'evil'), { instanceOf: UnauthenticatedError });
  const badToken = await client({ token: 'qkv_not-a-token' });
  await t.throwsAsync(badToken.deleteRange({ prefix: 'app/' }), { instanceOf: UnauthenticatedError });
  // Status stays public (leader discovery, load balancers); it reveals no data.
  t.true((await anonymous.status()).some((s) => s.status?.role === 'leader'));
  // A plaintext client cannot even talk to a TLS node.
  const plain = await connect({ endpoints: [cluster.live()[0]!.clientAddress], discover: false, deadlineMs: 1500 });
  clients.push(plain);
  await t.throwsAsync(plain.get('app/seed'));
  t.is(await snapshotOfCluster(admin), before, 'no data, term or leader changed');
});

test.serial('forbidden requests get PERMISSION_DENIED and change nothing; allowed ones work', async (t) => {
  const admin = await client({ username: 'admin', password: 'admin-pw' });
  const reader = await client({ username: 'reader', password: 'reader-pw' });
  const app = await client({ token });
  t.is((await reader.get('app/seed'))?.text(), 'v', 'a reader reads');
  await app.put('app/ok', '1');
  const before = await snapshotOfCluster(admin);
  await t.throwsAsync(reader.put('app/x', 'evil'), { instanceOf: PermissionDeniedError });
  await t.throwsAsync(reader.delete('app/seed'), { instanceOf: PermissionDeniedError });
  await t.throwsAsync(app.put('other/x', 'evil'), { instanceOf: PermissionDeniedError });
  await t.throwsAsync(app.get('other/x'), { instanceOf: PermissionDeniedError });
  await t.throwsAsync(app.scan({}), { instanceOf: PermissionDeniedError }, 'a scan beyond the prefix');
  await t.throwsAsync(app.deleteRange({ prefix: 'a' }), { instanceOf: PermissionDeniedError }, 'a range wider than app/');
  await t.throwsAsync(
    app.txn({
      success: [
        { op: 'put', key: 'app/y', value: '1' },
        { op: 'put', key: 'zzz', value: 'evil' },
      ],
    }),
    { instanceOf: PermissionDeniedError },
  );
  await t.throwsAsync(reader.transferLeadership('n2'), { instanceOf: PermissionDeniedError });
  await t.throwsAsync(app.removeMember('n3'), { instanceOf: PermissionDeniedError });
  await t.throwsAsync(app.addMember({ id: 'evil', raftAddress: '127.0.0.1:1', clientAddress: '127.0.0.1:2' }), { instanceOf: PermissionDeniedError });
  t.is((await app.scan({ prefix: 'app/' })).items.length, 2, 'within its prefix it reads');
  t.is(await snapshotOfCluster(admin), before, 'no data, term, leader or member changed');
});

test.serial('wrong-certificate peers cannot speak Raft', async (t) => {
  const admin = await client({ username: 'admin', password: 'admin-pw' });
  const before = await snapshotOfCluster(admin);
  const leader = await cluster.waitForLeader();
  const target = cluster.live().find((h) => h.id !== leader.id)!;
  const s = await target.probe.status();
  const forged = [[message('app', 'x', target.id, s.term + 5, { index: s.lastIndex, logTerm: s.term, commit: s.lastIndex + 1 })]];
  const noServerCheck = { checkServerIdentity: () => undefined };

  // 1. A certificate of another CA, naming a real member: the TLS handshake fails.
  const otherDir = path.join(cluster.root, 'other-ca');
  const otherConfigPath = path.join(cluster.root, 'other.json');
  const base = JSON.parse(await readFile(cluster.configPath, 'utf8')) as { tls: { ca: string }; nodes: { id: string; tls: object }[] };
  await writeFile(
    otherConfigPath,
    JSON.stringify({
      ...base,
      tls: { ca: path.join(otherDir, 'ca.crt') },
      nodes: base.nodes.map((n) => ({ ...n, tls: { cert: path.join(otherDir, `${n.id}.crt`), key: path.join(otherDir, `${n.id}.key`) } })),
    }),
  );
  await createCerts(await loadConfig(otherConfigPath));
  const foreign = new RaftForger(
    target.raftAddress,
    clusterName,
    grpc.credentials.createSsl(
      await readFile(path.join(otherDir, 'ca.crt')),
      await readFile(path.join(otherDir, `${leader.id}.key`)),
      await readFile(path.join(otherDir, `${leader.id}.crt`)),
      noServerCheck,
    ),
  );
  forgers.push(foreign);
  const f1 = await foreign.stream(leader.id, [[{ ...forged[0]![0]!, from: leader.id }]], 3000);
  t.not(f1.code, 0, `refused at the handshake (${f1.code} ${f1.details})`);

  // 2. No client certificate at all: the handshake fails too.
  const anonymous = new RaftForger(target.raftAddress, clusterName, grpc.credentials.createSsl(ca, null, null, noServerCheck));
  forgers.push(anonymous);
  t.not((await anonymous.stream(leader.id, [[{ ...forged[0]![0]!, from: leader.id }]], 3000)).code, 0);

  // 3. A real member's certificate used to claim another member's id: the stream is refused.
  const other = cluster.live().find((h) => h.id !== leader.id && h.id !== target.id)!;
  const certs = path.join(cluster.root, 'certs');
  const impostor = new RaftForger(
    target.raftAddress,
    clusterName,
    grpc.credentials.createSsl(ca, await readFile(path.join(certs, `${other.id}.key`)), await readFile(path.join(certs, `${other.id}.crt`)), noServerCheck),
  );
  forgers.push(impostor);
  const f3 = await impostor.stream(leader.id, [[{ ...forged[0]![0]!, from: leader.id }]]);
  t.is(f3.code, grpc.status.PERMISSION_DENIED, f3.details);
  t.true((await metric(target, 'quorumkv_raft_refused_batches_total')) >= 1);

  // 4. A client certificate of the cluster CA (not a member's): no member id, refused.
  await createCerts(await loadConfig(cluster.configPath), ['mallory']);
  const mallory = new RaftForger(
    target.raftAddress,
    clusterName,
    grpc.credentials.createSsl(
      ca,
      await readFile(path.join(certs, 'client-mallory.key')),
      await readFile(path.join(certs, 'client-mallory.crt')),
      noServerCheck,
    ),
  );
  forgers.push(mallory);
  t.is((await mallory.stream('mallory', [[{ ...forged[0]![0]!, from: 'mallory' }]])).code, grpc.status.PERMISSION_DENIED);

  await admin.put('app/after-peers', 'ok');
  const after = await snapshotOfCluster(admin);
  t.is(after.split(' | ')[0], before.split(' | ')[0], 'no term or leader changed');
});
