// RaftNode's membership API as the client service uses it: a change that already holds is not
// proposed again (client retries are safe), a change made while another is being applied waits
// for it instead of failing, promotion by id keeps the learner's addresses, and non-leaders refuse.
import test from 'ava';
import { InvalidArgumentError, NotLeaderError } from '../../src/api/errors.js';
import { eventually, startCluster } from './node-harness.js';

const soon = (ms = 5000) => Date.now() + ms;

test('concurrent changes both apply; repeating an applied change proposes nothing; promotion by id keeps addresses', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  await c.addJoiner('n4');
  // The second change is proposed while the first is pending: the core refuses it until the first
  // is applied, and the node waits that out rather than failing the call.
  await Promise.all([
    leader.addMember('n4', 'memory:n4', 'client-n4:1', { learner: true, deadline: soon() }),
    leader.addMember('n5', 'memory:n5', 'client-n5:1', { learner: true, deadline: soon() }),
  ]);
  let st = await leader.status();
  t.deepEqual(
    st.members
      .filter((m) => !m.voter)
      .map((m) => m.id)
      .sort(),
    ['n4', 'n5'],
  );

  const lastIndex = st.lastIndex;
  await leader.addMember('n4', 'memory:n4', 'client-n4:1', { learner: true, deadline: soon() });
  await leader.removeMember('nobody', { deadline: soon() });
  t.is((await leader.status()).lastIndex, lastIndex, 'no entry was proposed for changes that already hold');

  await leader.addMember('n4', '', '', { deadline: soon() });
  st = await leader.status();
  t.deepEqual(
    st.members.find((m) => m.id === 'n4'),
    { id: 'n4', clientAddress: 'client-n4:1', voter: true, raftAddress: 'memory:n4' },
  );
  t.is(leader.raftStatus().conf.voters.length, 4);
  // Promotion again (a retry) is a no-op too.
  await leader.addMember('n4', '', '', { deadline: soon() });
  t.is((await leader.status()).lastIndex, st.lastIndex);

  await leader.removeMember('n5', { deadline: soon() });
  t.deepEqual((await leader.status()).members.map((m) => m.id).sort(), ['n1', 'n2', 'n3', 'n4']);
});

test('promotion by id needs a known learner; followers refuse membership changes', async (t) => {
  const c = await startCluster(t);
  const leader = await c.leader();
  const before = leader.raftStatus().conf;
  await t.throwsAsync(leader.addMember('n9', '', '', { deadline: soon() }), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(leader.addMember('n9', '', '', { learner: true, deadline: soon() }), { instanceOf: InvalidArgumentError });
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  // A follower learns who leads from the leader's first append or heartbeat, a moment after the vote.
  await eventually(() => follower.raftStatus().leaderId === leader.raftStatus().id || undefined, 5000, 'the follower to know the leader');
  const err = await t.throwsAsync(follower.removeMember('n3', { deadline: soon() }), { instanceOf: NotLeaderError });
  t.is((err as NotLeaderError).leaderId, leader.raftStatus().id);
  await t.throwsAsync(follower.addMember('n3', '', '', { deadline: soon() }), { instanceOf: NotLeaderError });
  t.deepEqual(leader.raftStatus().conf, before, 'nothing changed');
});
