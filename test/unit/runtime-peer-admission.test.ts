// Peer admission when this node's view of the membership lags the leader's (both cases found by
// the simulator on the real runtime, where the lagging node never caught up again):
//   - a learner in this node's view that was promoted and elected meanwhile may lead it;
//   - the leader this node follows stays admitted when a snapshot older than the leader's own
//     addition narrows this node's view.
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
  t.is(a.check(msg('vote', 'n4', 6), { term: 5, leaderId: '' }), 'learner-cannot-vote');
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
