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
  const n4Term = (await cluster.statuses([n4])).get('n4')?.term;
  let last = 0;
  for (let i = 0; i < 5; i++) last = (await kv.put(`after/${i}`, `w${i}`)).index;

  await cluster.restart(away.id);
  let finalTerm: number | undefined;
  // It knows n4 only from the voters' word at first, then from the log it receives from n4.
  await eventually(
    async () => {
      const s = (await cluster!.statuses([away])).get(away.id);
      if (s === undefined || s.appliedIndex < last || s.leaderId !== 'n4' || !s.members.some((m) => m.id === 'n4' && m.voter)) return false;
      finalTerm = s.term;
      return true;
    },
    30_000,
    `${away.id} to follow n4 and apply index ${last}`,
  );
  // Only while n4 leads the term it took over does n4 alone hold the change: if the loaded machine
  // cost n4 its quorum meanwhile (four voters, one away: all three others must answer), a member it
  // knows may have led a term and sent the change itself, and the voucher was not needed.
  const relevant = away.lines.filter((l) =>
    /leader_vouched|leader_changed|member_changed|raft_message_refused|raft\.vote|raft\.campaign|raft\.election/.test(l),
  );
  if (finalTerm === n4Term) {
    t.true(
      away.logged('"event":"leader_vouched"'),
      `${away.id} logged whose word let n4 in (n4 led term ${n4Term} throughout); its log:\n${relevant.slice(-30).join('\n')}`,
    );
  } else {
    t.log(
      `the leader changed (n4 led term ${n4Term}, then term ${finalTerm}): ${away.id} caught up; voucher logged: ${away.logged('"event":"leader_vouched"')}`,
    );
  }
  const onAway = await connect({ endpoints: [away.clientAddress], discover: false, deadlineMs: 5_000 });
  clients.push(onAway);
  const read = await onAway.getDetail('after/4', { consistency: 'follower', minIndex: last });
  t.is(read.servedBy, away.id);
  t.is(read.item?.text(), 'w4');
});
