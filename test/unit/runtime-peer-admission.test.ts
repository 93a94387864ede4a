// Peer admission when this node's view of the membership lags the leader's (both cases found by
// the simulator on the real runtime, where the lagging node never caught up again):
//   - a learner in this node's view that was promoted and elected meanwhile may lead it;
//   - the leader this node follows stays admitted when a snapshot older than the leader's own
//     addition narrows this node's view;
//   - a leader added while this node was away is let in for one term on a voter's word (seeds 540,
//     4429, 6637, 9817, 13012, 13581, 17727, 18414 of a 20000-seed swarm).
// One leader per term, members only, and no learner votes still hold.
import test from 'ava';
import type { ConfState, Message, MessageType } from '../../src/raft/types.js';
import { emptyMessage } from '../../src/raft/types.js';
import { PeerAdmission } from '../../src/runtime/peer-admission.js';

function admission(conf: { current: ConfState }): PeerAdmission {
  return new PeerAdmission(
    'n1',
    () => conf.current,
    () => [],
  );
}

const msg = (type: MessageType, from: string, term: number): Message => emptyMessage(type, from, 'n1', term);

test("a learner in this node's (stale) view may lead it; one leader per term still holds", (t) => {
  const conf = { current: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] } };
  const a = admission(conf);
  t.is(a.check(msg('app', 'n4', 5), { term: 4, leaderId: 'n2' }), undefined, 'a higher term: n4 was promoted and elected');
  t.is(a.check(msg('heartbeat', 'n4', 5), { term: 5, leaderId: 'n4' }), undefined);
  t.is(a.check(msg('app', 'n4', 5), { term: 5, leaderId: 'n2' }), 'not-the-leader-of-this-term');
  t.is(a.check(msg('vote', 'n4', 6), { term: 5, leaderId: '' }), undefined, 'it may have been promoted meanwhile: asked, this node answers');
  t.is(a.check(msg('voteResp', 'n4', 6), { term: 6, leaderId: '' }), 'learner-cannot-vote', "but a learner's vote counts for nothing");
  t.is(a.check(msg('app', 'n9', 6), { term: 5, leaderId: '' }), 'not-a-member');
});

test("the leader this node follows stays admitted after a snapshot drops it from this node's view", (t) => {
  const conf = { current: { voters: ['n1', 'n2', 'n3'], learners: [] as string[] } };
  const a = admission(conf);
  t.is(a.check(msg('snap', 'n3', 7), { term: 6, leaderId: '' }), undefined);
  // The snapshot predates n3's addition: after installing it, n3 is not a member here.
  conf.current = { voters: ['n1', 'n2', 'n4'], learners: [] };
  a.confChanged(63);
  t.is(a.check(msg('app', 'n3', 7), { term: 7, leaderId: 'n3' }), undefined, 'the known leader of the term');
  t.is(a.check(msg('readIndexResp', 'n3', 7), { term: 7, leaderId: 'n3' }), undefined);
  t.is(a.check(msg('app', 'n3', 8), { term: 7, leaderId: 'n3' }), 'not-a-member', 'a new term needs membership again');
  t.is(a.check(msg('vote', 'n3', 7), { term: 7, leaderId: 'n3' }), 'not-a-member', 'only leader traffic');
});

test('a leader this node does not know is let in for the term a voter vouches for, and only then', (t) => {
  const conf = { current: { voters: ['n1', 'n2', 'n3'], learners: ['n5'] } };
  const a = admission(conf);
  // n4 was added and elected while this node was away: its traffic looks like a non-member's.
  t.is(a.check(msg('heartbeat', 'n4', 12), { term: 11, leaderId: '' }), 'not-a-member');
  t.false(a.isVouchedLeader('n4'));
  t.false(a.vouch(12, 'n4', 'n5'), "a learner's word counts for nothing");
  t.false(a.vouch(12, 'n4', 'n9'), "a non-member's word counts for nothing");
  t.false(a.vouch(12, 'n2', 'n3'), 'a member needs no voucher');
  t.true(a.vouch(12, 'n4', 'n2'), 'voter n2 follows n4 in term 12');
  t.false(a.vouch(12, 'n4', 'n3'), 'said again: nothing changes');
  t.true(a.isVouchedLeader('n4'), 'the transport lets its batches in');
  t.is(a.check(msg('heartbeat', 'n4', 12), { term: 12, leaderId: '' }), undefined);
  t.is(a.check(msg('snap', 'n4', 12), { term: 11, leaderId: '' }), undefined);
  t.is(a.check(msg('app', 'n4', 13), { term: 12, leaderId: 'n4' }), 'not-a-member', 'only the vouched term');
  t.is(a.check(msg('app', 'n4', 12), { term: 12, leaderId: 'n2' }), 'not-the-leader-of-this-term', 'one leader per term');
  t.is(a.check(msg('vote', 'n4', 13), { term: 12, leaderId: '' }), 'not-a-member', 'leader traffic only: no votes');
  t.is(a.check(msg('timeoutNow', 'n4', 12), { term: 12, leaderId: '' }), 'not-a-member');
  t.false(a.vouch(11, 'n6', 'n2'), 'an older term does not replace a newer vouch');
  t.true(a.vouch(14, 'n6', 'n3'));
  t.is(a.check(msg('heartbeat', 'n4', 12), { term: 12, leaderId: '' }), 'not-a-member', 'replaced by the newer term');
});
