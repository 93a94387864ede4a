import test from 'ava';
import { ManualNet } from '../sim/manual-net.js';

test('leadership transfer waits for the target to catch up, then sends TimeoutNow; proposals are refused meanwhile', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.cut('n1', 'n3');
  for (let i = 0; i < 5; i++) net.propose('n1', `v${i}`);
  net.stabilize();
  t.is(net.get('n3').storage.lastIndex(), 1, 'n3 lags');

  net.get('n1').raw.transferLeadership('n3');
  net.flush('n1');
  t.is(net.get('n1').raw.status().leadTransferee, 'n3');
  t.throws(() => net.propose('n1', 'during'), { name: 'ProposalDroppedError' });
  t.false(
    net.outbox.some((m) => m.type === 'timeoutNow'),
    'no TimeoutNow to a lagging target',
  );

  net.heal();
  net.tick('n1', net.heartbeatTicks);
  net.stabilize();
  t.is(net.role('n3'), 'leader');
  t.is(net.term('n3'), 2);
  t.is(net.role('n1'), 'follower');
  const timeoutNow = net.delivered.findIndex((m) => m.type === 'timeoutNow' && m.to === 'n3');
  const caughtUp = net.delivered.findIndex((m) => m.type === 'appResp' && m.from === 'n3' && !m.reject && m.index === 6);
  t.true(caughtUp >= 0 && timeoutNow > caughtUp, 'TimeoutNow only after n3 acknowledged the whole log');
  t.deepEqual(net.appliedValues('n3'), ['v0', 'v1', 'v2', 'v3', 'v4']);
  net.propose('n3', 'after');
  net.stabilize();
  t.deepEqual(net.appliedValues('n1').slice(-1), ['after']);
});

test('a transfer to an unreachable target times out and the leader accepts proposals again', (t) => {
  const net = new ManualNet(['n1', 'n2', 'n3']);
  net.elect('n1');
  net.cut('n1', 'n3');
  net.propose('n1', 'x');
  net.stabilize();
  net.get('n1').raw.transferLeadership('n3');
  for (let i = 0; i < net.electionTicks; i++) {
    net.tick('n1');
    net.stabilize();
  }
  t.is(net.role('n1'), 'leader');
  t.is(net.get('n1').raw.status().leadTransferee, '');
  t.notThrows(() => net.propose('n1', 'y'));
});
