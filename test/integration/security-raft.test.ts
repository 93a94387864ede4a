// Attacks on the Raft port of a real three-node cluster (plaintext, as an attacker on the same
// network would): forged traffic from a process that is not a member, and from a member id that is
// not the leader of the term. Each test asserts the refusal, that no node's term, leader or data
// changed, and that every node still holds identical data.
import test from 'ava';
import { readFile } from 'node:fs/promises';
import { encodeConfEntry } from '../../src/raft/conf-change-codec.js';
import type { Entry, Message } from '../../src/raft/types.js';
import { encodeCommand } from '../../src/storage/codec.js';
import { MemoryStateMachine } from '../../src/storage/memory-state-machine.js';
import { wrapSnapshotData } from '../../src/runtime/snapshot-envelope.js';
import { encodeConfContext } from '../../src/runtime/membership.js';
import { connect, type KvClient } from '../../src/index.js';
import { eventually, httpGet, ProcessCluster, type NodeHandle } from './harness.js';
import { message, RaftForger } from './raft-forger.js';

let cluster: ProcessCluster;
let kv: KvClient;
let clusterName: string;
const forgers: RaftForger[] = [];

function forger(h: NodeHandle): RaftForger {
  const f = new RaftForger(h.raftAddress, clusterName);
  forgers.push(f);
  return f;
}

async function metric(h: NodeHandle, name: string): Promise<number> {
  const { body } = await httpGet(h, '/metrics');
  const line = body.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
}

interface View {
  leader: string;
  term: number;
  members: string;
  data: string;
}

/** Every node's term, leader, members and whole data set once all have applied the same index. */
async function views(): Promise<Map<string, View>> {
  const st = await cluster.statuses();
  const commit = Math.max(...[...st.values()].map((s) => s.commitIndex));
  return eventually(
    async () => {
      const out = new Map<string, View>();
      for (const h of cluster.live()) {
        const s = await h.probe.status(1000);
        if (s.appliedIndex < commit) return undefined;
        const pinned = await connect({ endpoints: [h.clientAddress], discover: false, deadlineMs: 3000 });
        try {
          const page = await pinned.scan({ consistency: 'follower', minIndex: commit, limit: 10_000 });
          out.set(h.id, {
            leader: s.leaderId,
            term: s.term,
            members: s.members
              .map((m) => `${m.id}:${m.voter ? 'voter' : 'learner'}`)
              .sort()
              .join(','),
            data: page.items.map((i) => `${Buffer.from(i.key).toString()}=${i.text()}`).join(';'),
          });
        } finally {
          await pinned.close();
        }
      }
      return out;
    },
    10_000,
    'every node to apply the commit index',
  );
}

function assertUnchanged(t: import('ava').ExecutionContext, before: Map<string, View>, after: Map<string, View>): void {
  for (const [id, v] of after) {
    t.is(v.term, before.get(id)!.term, `${id}: term unchanged`);
    t.is(v.leader, before.get(id)!.leader, `${id}: leader unchanged`);
    t.is(v.members, before.get(id)!.members, `${id}: members unchanged`);
  }
  const datas = new Set([...after.values()].map((v) => v.data));
  t.is(datas.size, 1, 'every node holds the same data');
  t.false([...datas][0]!.includes('pwned'), 'no forged write anywhere');
}

function cmdEntry(term: number, index: number, key: string, value: string): Entry {
  return {
    term,
    index,
    type: 'normal',
    data: encodeCommand({ clientId: '', seq: 0, firstUnacked: 0, op: { op: 'put', key: Buffer.from(key), value: Buffer.from(value) } }),
  };
}

test.before(async () => {
  cluster = await ProcessCluster.start({ size: 3 });
  clusterName = (JSON.parse(await readFile(cluster.configPath, 'utf8')) as { cluster: string }).cluster;
  await cluster.waitForLeader();
  kv = await connect({ endpoints: [...cluster.nodes.values()].map((h) => h.clientAddress), deadlineMs: 8000 });
  for (let i = 0; i < 5; i++) await kv.put(`k${i}`, `v${i}`);
});

test.after.always(async () => {
  for (const f of forgers) f.close();
  await kv?.close();
  await cluster?.close();
});

test.serial('forged term bump: a non-member heartbeatResp with a far higher term deposes nobody', async (t) => {
  const leader = await cluster.waitForLeader();
  const before = await views();
  const term = before.get(leader.id)!.term;
  const refusedBefore = await metric(leader, 'quorumkv_raft_refused_messages_total');
  const f = forger(leader);
  for (let i = 0; i < 5; i++) {
    const outcome = await f.stream('evil', [[message('heartbeatResp', 'evil', leader.id, term + 1000)]]);
    t.is(outcome.code, 0, 'the stream itself is not an error: the batch is dropped unread');
  }
  await kv.put('after-bump', 'ok');
  t.true((await metric(leader, 'quorumkv_raft_refused_batches_total')) >= 5, 'the batches were refused');
  t.is(await metric(leader, 'quorumkv_raft_refused_messages_total'), refusedBefore, 'nothing reached the runtime');
  const after = await views();
  assertUnchanged(t, before, after);
});

test.serial('term 2^53-1 sent to every node leaves the cluster led, in its own term', async (t) => {
  const before = await views();
  for (const h of cluster.live()) {
    const f = forger(h);
    const max = Number.MAX_SAFE_INTEGER;
    await f.stream('evil', [[message('vote', 'evil', h.id, max, { index: 1e9, logTerm: max })]]);
    await f.stream('evil', [[message('heartbeat', 'evil', h.id, max)]]);
  }
  // Even a message under a member's name cannot carry a term no election could follow.
  const leader = await cluster.waitForLeader();
  const follower = cluster.live().find((h) => h.id !== leader.id)!;
  await forger(follower).stream(leader.id, [[message('heartbeat', leader.id, follower.id, Number.MAX_SAFE_INTEGER)]]);
  t.true((await metric(follower, 'quorumkv_raft_refused_messages_total')) >= 1, 'the member-named message was refused by the runtime');
  await kv.put('after-max-term', 'ok');
  assertUnchanged(t, before, await views());
});

test.serial('forged append: a non-member and a member that does not lead this term cannot inject a committed write', async (t) => {
  const leader = await cluster.waitForLeader();
  const before = await views();
  const follower = cluster.live().find((h) => h.id !== leader.id)!;
  const other = cluster.live().find((h) => h.id !== leader.id && h.id !== follower.id)!;
  const s = await follower.probe.status();
  const term = s.term;
  const last = s.lastIndex;
  const app = (from: string, t2: number): Message =>
    message('app', from, follower.id, t2, { index: last, logTerm: term, entries: [cmdEntry(t2, last + 1, 'pwned', 'by-evil')], commit: last + 1 });
  // A stranger, in the current and in a higher term.
  await forger(follower).stream('evil', [[app('evil', term)], [app('evil', term + 1)]]);
  // A member that is not this term's leader (without TLS its id is only claimed, but one leader per term holds).
  const refused = await metric(follower, 'quorumkv_raft_refused_messages_total');
  await forger(follower).stream(other.id, [[app(other.id, term)]]);
  await eventually(async () => (await metric(follower, 'quorumkv_raft_refused_messages_total')) > refused, 5000, 'the member-named append to be refused');
  await kv.put('after-append', 'ok');
  const got = await follower.probe.get('pwned', { consistency: 'follower' });
  t.false(got.found, 'the follower serves no forged value');
  assertUnchanged(t, before, await views());
});

test.serial('forged conf entry: a non-member cannot make itself a voter', async (t) => {
  const before = await views();
  for (const h of cluster.live()) {
    const s = await h.probe.status();
    const conf = encodeConfEntry(
      { type: 'addVoter', nodeId: 'evil', context: encodeConfContext({ raftAddress: '127.0.0.1:1', clientAddress: '127.0.0.1:2' }) },
      { voters: ['evil', ...s.members.filter((m) => m.voter).map((m) => m.id)], learners: [] },
    );
    const entry: Entry = { term: s.term + 1, index: s.lastIndex + 1, type: 'conf', data: conf };
    await forger(h).stream('evil', [
      [message('app', 'evil', h.id, s.term + 1, { index: s.lastIndex, logTerm: s.term, entries: [entry], commit: s.lastIndex + 1 })],
    ]);
  }
  await kv.put('after-conf', 'ok');
  const after = await views();
  for (const v of after.values()) t.false(v.members.includes('evil'));
  assertUnchanged(t, before, after);
});

test.serial('crafted snapshot with a correct CRC is refused before any data is buffered', async (t) => {
  const leader = await cluster.waitForLeader();
  const before = await views();
  const follower = cluster.live().find((h) => h.id !== leader.id)!;
  const s = await follower.probe.status();
  const sm = new MemoryStateMachine();
  await sm.apply([cmdEntry(1, 1, 'pwned', 'by-snapshot')]);
  const state = await sm.snapshot();
  const snapshot = {
    meta: { index: s.commitIndex + 1000, term: s.term + 1, conf: { voters: ['evil'], learners: [] } },
    data: wrapSnapshotData(state.data, [{ id: 'evil', raftAddress: '127.0.0.1:1', clientAddress: '127.0.0.1:2' }]),
  };
  const m = message('snap', 'evil', follower.id, s.term + 1, { snapshot });
  const outcome = await forger(follower).installSnapshot('evil', m, snapshot);
  t.is(outcome.code, 7, `PERMISSION_DENIED (got ${outcome.code} ${outcome.details})`);
  // Under a member's name but not from this term's leader: refused as well.
  const other = cluster.live().find((h) => h.id !== leader.id && h.id !== follower.id)!;
  const asMember = await forger(follower).installSnapshot(other.id, { ...m, from: other.id, term: s.term }, snapshot);
  t.is(asMember.code, 7, `PERMISSION_DENIED (got ${asMember.code} ${asMember.details})`);
  await kv.put('after-snapshot', 'ok');
  assertUnchanged(t, before, await views());
});

test.serial("a stranger naming another cluster is refused without learning this cluster's name", async (t) => {
  const h = cluster.live()[0]!;
  const f = new RaftForger(h.raftAddress, 'guess');
  forgers.push(f);
  const outcome = await f.stream('evil', [[message('heartbeat', 'evil', h.id, 1)]]);
  t.is(outcome.code, 9, 'FAILED_PRECONDITION');
  t.false(outcome.details.includes(clusterName), `the refusal does not name the cluster: ${outcome.details}`);
});
