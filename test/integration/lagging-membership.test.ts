// A follower that was away while a new node joined and took over leadership (found by the
// simulator, seeds 540, 4429 and six more of a 20000-seed swarm): it has not applied the change that
// made the new leader a member, so peer admission refuses that leader's traffic as a non-member's,
// and only that leader could send it the change. The follower must still catch up: a voter it
// knows names the leader (and its address) when it refuses the follower's pre-vote.
// Real processes: the follower is down (SIGKILL) while the joiner is added, promoted and made
// leader, then restarts with its data. (A SIGSTOPped follower is no test of this: the kernel keeps
// the appends carrying the change in its socket buffers and hands them over on SIGCONT.)
import test from 'ava';
import type { KvClient } from '../../src/index.js';
import { connect } from '../../src/index.js';
import { eventually, ProcessCluster } from './harness.js';

let cluster: ProcessCluster | undefined;
const clients: KvClient[] = [];

test.after.always(async () => {
  for (const c of clients) await c.close();
  await cluster?.close();
});

test('a follower that missed the addition of the current leader accepts it on a voter’s word and catches up', async (t) => {
  t.timeout(90_000);
  cluster = await ProcessCluster.start({ size: 3 });
  const leader = await cluster.waitForLeader();
  const kv = await connect({ endpoints: [...cluster.nodes.values()].map((h) => h.clientAddress), deadlineMs: 10_000 });
  clients.push(kv);
  for (let i = 0; i < 5; i++) await kv.put(`before/${i}`, `v${i}`);

  const away = [...cluster.nodes.values()].find((h) => h.id !== leader.id)!;
  await cluster.kill(away.id);
  const n4 = await cluster.startJoiner('n4');
  await kv.addMember({ id: 'n4', raftAddress: n4.raftAddress, clientAddress: n4.clientAddress, learner: true });
  await kv.promote('n4');
  await kv.transferLeadership('n4');
  t.is((await cluster.waitForLeader(15_000, [away.id])).id, 'n4');
  let last = 0;
  for (let i = 0; i < 5; i++) last = (await kv.put(`after/${i}`, `w${i}`)).index;

  const linesBeforeRestart = away.lines.length;
  await cluster.restart(away.id);
  // It knows n4 only from the voters' word at first, then from the log it receives from n4.
  await eventually(
    async () => {
      const s = (await cluster!.statuses([away])).get(away.id);
      return s !== undefined && s.appliedIndex >= last && s.leaderId === 'n4' && s.members.some((m) => m.id === 'n4' && m.voter);
    },
    30_000,
    `${away.id} to follow n4 and apply index ${last}`,
  );
  // The voucher is needed only when no member it knows can send it the change. One can: a message
  // the old leader queued for it while it was down (an append carrying the change, sent before
  // the transfer) is delivered when it comes back, and on a loaded machine n4 may lose its quorum
  // (four voters, one away: all three others must answer) to a founder that then leads. Either way
  // it first follows a founder after the restart.
  const sinceRestart = away.lines.slice(linesBeforeRestart);
  const leaders = sinceRestart.filter((l) => l.includes('"event":"leader_changed"')).map((l) => (JSON.parse(l) as { leader: string }).leader);
  const viaFounder = leaders.find((leader) => leader !== 'n4');
  const relevant = sinceRestart.filter((l) =>
    /leader_vouched|leader_changed|member_changed|raft_message_refused|raft\.vote|raft\.campaign|raft\.election/.test(l),
  );
  if (viaFounder === undefined) {
    t.true(away.logged('"event":"leader_vouched"'), `${away.id} logged whose word let n4 in; its log since the restart:\n${relevant.join('\n')}`);
  } else {
    t.log(`${away.id} followed ${viaFounder} after its restart, which could send it the change; voucher logged: ${away.logged('"event":"leader_vouched"')}`);
  }
  const onAway = await connect({ endpoints: [away.clientAddress], discover: false, deadlineMs: 5_000 });
  clients.push(onAway);
  const read = await onAway.getDetail('after/4', { consistency: 'follower', minIndex: last });
  t.is(read.servedBy, away.id);
  t.is(read.item?.text(), 'w4');
});
