import test from 'ava';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { emptyMessage, type Entry } from '../../src/raft/types.js';
import { ManualNet } from '../sim/manual-net.js';

const enc = new TextEncoder();
const entry = (index: number, term: number, data = ''): Entry => ({ index, term, type: 'normal', data: enc.encode(data) });

test('a follower with a divergent uncommitted suffix is overwritten, with fast backtracking', (t) => {
  // Shared committed prefix 1..31 (term 1). n1 then kept 30 uncommitted term-1 entries (32..61)
  // while n2 and n3 went on in term 2 with 50 entries (32..81).
  const ids = ['n1', 'n2', 'n3'];
  const prefix = Array.from({ length: 31 }, (_, i) => entry(i + 1, 1, `c${i + 1}`));
  const logs: Record<string, Entry[]> = {
    n1: [...prefix, ...Array.from({ length: 30 }, (_, i) => entry(32 + i, 1, `lost${i}`))],
    n2: [...prefix, ...Array.from({ length: 50 }, (_, i) => entry(32 + i, 2, `new${i}`))],
  };
  logs.n3 = logs.n2!;
  const net = new ManualNet([]);
  for (const id of ids) {
    const storage = new MemoryStorage({ voters: ids, learners: [] });
    storage.append(logs[id]!);
    storage.setHardState({ term: 2, vote: '', commit: 31 });
    net.add(id, storage, 31);
  }
  net.elect('n2');
  t.is(net.role('n2'), 'leader');
  t.deepEqual(net.log('n1'), net.log('n2'));
  t.is(net.get('n1').storage.lastIndex(), 82); // 81 + the term-3 no-op
  t.false(net.log('n1').some((e) => e.includes('lost')));
  t.deepEqual(
    net.appliedValues('n1'),
    Array.from({ length: 50 }, (_, i) => `new${i}`),
  );
  // One-index-at-a-time backtracking would need ~31 rejected round trips here.
  const rejects = net.delivered.filter((m) => m.type === 'appResp' && m.from === 'n1' && m.reject);
  t.true(rejects.length >= 1 && rejects.length <= 3, `${rejects.length} rejected appends`);
});

test('figure 8: a leader does not commit an entry of an earlier term by counting replicas', (t) => {
  // Terms 1-3 happened already: index 2 holds a term-2 entry on n1,n2 and a term-3 entry on n5.
  const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
  const logs: Record<string, Entry[]> = {
    n1: [entry(1, 1), entry(2, 2, 'old')],
    n2: [entry(1, 1), entry(2, 2, 'old')],
    n3: [entry(1, 1)],
    n4: [entry(1, 1)],
    n5: [entry(1, 1), entry(2, 3, 'other')],
  };
  const net = new ManualNet([]);
  for (const id of ids) {
    const storage = new MemoryStorage({ voters: ids, learners: [] });
    storage.append(logs[id]!);
    storage.setHardState({ term: 3, vote: '', commit: 1 });
    net.add(id, storage, 1);
  }
  // n1 wins term 4 (n5's log is more up to date than n1's and refuses); its appends are held back.
  net.tick('n1', net.electionTicks);
  for (let i = 0; i < 10; i++) {
    net.flush();
    net.drop((m) => m.type === 'app' || m.type === 'heartbeat');
    net.deliver();
  }
  const n1 = net.get('n1').raw;
  t.is(n1.status().role, 'leader');
  t.is(n1.status().term, 4);
  t.is(n1.status().lastIndex, 3); // its no-op at 3@4

  // A majority (n1, n2, n3) now holds the term-2 entry at index 2...
  for (const from of ['n2', 'n3']) n1.step({ ...emptyMessage('appResp', from, 'n1', 4), index: 2 });
  net.flush('n1');
  t.is(n1.status().commit, 1, 'an old-term entry must not be committed by counting replicas');
  t.false(net.get('n1').applied.some((e) => e.index === 2));

  // ...and once the term-4 entry is on a majority, both commit.
  for (const from of ['n2', 'n3']) n1.step({ ...emptyMessage('appResp', from, 'n1', 4), index: 3 });
  net.flush('n1');
  t.is(n1.status().commit, 3);
  t.deepEqual(
    net.get('n1').applied.map((e) => `${e.index}@${e.term}`),
    ['2@2', '3@4'],
  ); // 1 was applied before the restart

  // n5's conflicting index 2 is overwritten once it hears from the leader.
  net.drop();
  net.tick('n1', net.heartbeatTicks);
  net.stabilize();
  t.deepEqual(net.log('n5'), net.log('n1'));
});

test('replication is pipelined and batched: many proposals reach a follower in few messages', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  const before = net.delivered.length;
  for (let i = 0; i < 100; i++) net.get('n1').raw.propose(enc.encode(`v${i}`));
  net.stabilize();
  const apps = net.delivered.slice(before).filter((m) => m.type === 'app' && m.to === 'n2');
  t.true(apps.length <= 3, `${apps.length} append messages for 100 proposals`);
  t.is(net.appliedValues('n2').length, 100);
  t.is(net.get('n1').raw.status().commit, 101);
});
