import test from 'ava';
import { ManualNet } from '../sim/manual-net.js';

test('ReadIndex on the leader is released only after a heartbeat quorum confirms leadership', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  const n1 = net.get('n1');
  n1.raw.readIndex('r1');
  net.flush('n1');
  t.deepEqual(n1.readStates, [], 'no release before any follower answered');
  const beats = net.outbox.filter((m) => m.type === 'heartbeat' && m.context === 'r1');
  t.deepEqual(beats.map((m) => m.to).sort(), ['n2', 'n3']);
  // Only n3's answer arrives: n1 + n3 is a quorum of three.
  net.drop((m) => m.to === 'n2');
  net.deliver();
  net.flush();
  net.deliver();
  net.flush('n1');
  t.deepEqual(n1.readStates, [{ index: 2, context: 'r1' }]);
});

test('ReadIndex is not released without a quorum of answers', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.isolate('n1');
  net.get('n1').raw.readIndex('lonely');
  for (let i = 0; i < 3; i++) {
    net.tick('n1', net.heartbeatTicks);
    net.stabilize();
  }
  t.deepEqual(net.get('n1').readStates, []);
});

test('a new leader defers ReadIndex until it has committed an entry of its own term', (t) => {
  // check-quorum off so that n3 votes for n2 without waiting out n1's lease.
  const net = new ManualNet(['n1', 'n2', 'n3'], { checkQuorum: false });
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  // n2 wins term 2, but its appends (carrying its no-op) are held back.
  net.isolate('n1');
  net.tick('n2', net.electionTicks * 2);
  for (let i = 0; i < 10; i++) {
    net.flush();
    net.drop((m) => m.type === 'app');
    net.deliver();
  }
  const n2 = net.get('n2');
  t.is(n2.raw.status().role, 'leader');
  t.is(n2.raw.status().commit, 2); // still the old term's commit index
  n2.raw.readIndex('r2');
  net.flush('n2');
  t.false(
    net.outbox.some((m) => m.context === 'r2'),
    'no read heartbeat before the no-op commits',
  );
  net.tick('n2', net.heartbeatTicks);
  for (let i = 0; i < 4; i++) {
    net.flush();
    net.drop((m) => m.type === 'app');
    net.deliver();
  }
  t.deepEqual(n2.readStates, [], 'heartbeats alone do not release it');
  // Let the no-op replicate: it commits at index 3 and the read is released at (or after) it.
  net.tick('n2', net.heartbeatTicks);
  net.stabilize();
  t.is(n2.raw.status().commit, 3);
  t.deepEqual(n2.readStates, [{ index: 3, context: 'r2' }]);
});

test('ReadIndex on a follower is forwarded to the leader and released locally', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.propose('n1', 'a');
  net.stabilize();
  net.get('n3').raw.readIndex('f1');
  net.stabilize();
  t.deepEqual(net.get('n3').readStates, [{ index: 2, context: 'f1' }]);
  t.true(net.delivered.some((m) => m.type === 'readIndex' && m.from === 'n3' && m.to === 'n1'));
});

test('ReadIndex with no known leader throws NotLeaderError', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  t.throws(() => net.get('n2').raw.readIndex('x'), { name: 'NotLeaderError' });
});
