import test from 'ava';
import { ManualNet } from '../sim/manual-net.js';

const enc = new TextEncoder();

test('a follower that fell behind the compacted log is caught up by InstallSnapshot', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n3');
  for (let i = 0; i < 20; i++) net.propose('n1', `v${i}`);
  net.stabilize();
  const n1 = net.get('n1');
  const applied = n1.applied[n1.applied.length - 1]!.index;
  t.is(applied, 21);
  n1.storage.createSnapshot(applied, n1.raw.status().conf, enc.encode('state@21'));
  n1.storage.compact(applied);
  t.is(n1.storage.firstIndex(), 22);

  net.heal();
  net.tick('n1', net.heartbeatTicks);
  net.stabilize();
  const snaps = net.delivered.filter((m) => m.type === 'snap' && m.to === 'n3');
  t.is(snaps.length, 1);
  t.is(snaps[0]!.snapshot!.meta.index, 21);
  const n3 = net.get('n3');
  t.is(n3.storage.snapshot().meta.index, 21);
  t.deepEqual(n3.storage.snapshot().data, enc.encode('state@21'));
  t.deepEqual(n3.storage.snapshot().meta.conf.voters.sort(), ['n1', 'n2', 'n3']);
  t.is(n3.raw.status().applied, 21);

  // Replication resumes from the snapshot onwards.
  net.propose('n1', 'after');
  net.stabilize();
  t.deepEqual(net.appliedValues('n3'), ['after']);
  t.deepEqual(net.log('n3'), net.log('n1'));
  const progress = n1.raw.status().progress!['n3']!;
  t.is(progress.state, 'replicate');
  t.is(progress.match, 22);
});

test('a follower that restarts with its applied index does not get entries re-delivered', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  for (let i = 0; i < 3; i++) net.propose('n1', `v${i}`);
  net.stabilize();
  const before = net.get('n2').applied.length;
  net.restart('n2');
  net.propose('n1', 'more');
  net.tick('n1', net.heartbeatTicks);
  net.stabilize();
  const applied = net.get('n2').applied;
  t.is(applied.length, before + 1);
  t.deepEqual(net.appliedValues('n2'), ['v0', 'v1', 'v2', 'more']);
});
