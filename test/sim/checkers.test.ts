import test from 'ava';
import {
  checkAckedWritesSurvive,
  checkDurability,
  checkElectionSafety,
  checkExactlyOnce,
  checkLeaderCompleteness,
  checkLinearizableRead,
  checkLiveness,
  checkLogMatching,
  checkStateMachineSafety,
  checkWaitOutcome,
  type AckRecord,
  type AppliedRecord,
  type CommittedEntry,
  type LogView,
  type ReadObservation,
} from './checkers.js';

const log = (first: number, ...entries: [number, string][]): LogView => ({
  first,
  entries: entries.map(([term, digest], i) => ({ index: first + i, term, digest })),
});

const committed = (...entries: [number, number, string, number][]): Map<number, CommittedEntry> =>
  new Map(entries.map(([index, term, digest, seq]) => [index, { index, term, digest, seq }]));

test('election safety: two leaders in one term fail, one leader per term passes', (t) => {
  t.is(
    checkElectionSafety(
      [
        { node: 'n1', term: 2 },
        { node: 'n2', term: 3 },
      ],
      new Map([[1, 'n3']]),
    ),
    null,
  );
  t.is(checkElectionSafety([{ node: 'n1', term: 2 }], new Map([[2, 'n1']])), null);
  const now = checkElectionSafety(
    [
      { node: 'n1', term: 2 },
      { node: 'n2', term: 2 },
    ],
    new Map(),
  );
  t.is(now?.checker, 'election-safety');
  const history = checkElectionSafety([{ node: 'n2', term: 2 }], new Map([[2, 'n1']]));
  t.regex(history?.message ?? '', /two leaders in term 2: n1 and n2/);
});

test('log matching: same index and term with different history below fails', (t) => {
  const a = log(1, [1, 'noop'], [1, 'w|a|1'], [2, 'w|b|2']);
  const same = log(1, [1, 'noop'], [1, 'w|a|1'], [2, 'w|b|2'], [2, 'w|c|3']);
  const divergentTail = log(1, [1, 'noop'], [1, 'w|a|1'], [3, 'w|x|9']); // legal: uncommitted suffixes may differ
  t.is(
    checkLogMatching(
      new Map([
        ['n1', a],
        ['n2', same],
        ['n3', divergentTail],
      ]),
    ),
    null,
  );
  t.is(
    checkLogMatching(
      new Map([
        ['n1', a],
        ['n2', log(3, [2, 'w|b|2'])],
      ]),
    ),
    null,
  ); // compacted prefix
  const bad = log(1, [1, 'noop'], [1, 'w|OTHER|1'], [2, 'w|b|2']);
  const v = checkLogMatching(
    new Map([
      ['n1', a],
      ['n2', bad],
    ]),
  );
  t.is(v?.checker, 'log-matching');
  t.regex(v!.message, /agree on index 3 .* differ at index 2/);
  const sameIndexTermDifferentData = checkLogMatching(
    new Map([
      ['n1', log(1, [1, 'w|a|1'])],
      ['n2', log(1, [1, 'w|a|2'])],
    ]),
  );
  t.is(sameIndexTermDifferentData?.checker, 'log-matching');
});

test('leader completeness: a leader elected after a commit must hold the entry', (t) => {
  const c = committed([1, 1, 'noop', 1], [2, 1, 'w|a|1', 5], [3, 1, 'w|b|2', 20]);
  // Elected at seq 10: entries 1 and 2 (committed before) are required; 3 (committed later) is not.
  t.is(checkLeaderCompleteness({ node: 'n2', term: 2, sinceSeq: 10, log: log(1, [1, 'noop'], [1, 'w|a|1'], [2, 'noop']) }, c), null);
  t.is(checkLeaderCompleteness({ node: 'n2', term: 2, sinceSeq: 10, log: log(2, [1, 'w|a|1']) }, c), null);
  const missing = checkLeaderCompleteness({ node: 'n2', term: 2, sinceSeq: 10, log: log(1, [1, 'noop']) }, c);
  t.is(missing?.checker, 'leader-completeness');
  t.regex(missing!.message, /missing committed entry 2/);
  const overwritten = checkLeaderCompleteness({ node: 'n2', term: 2, sinceSeq: 10, log: log(1, [1, 'noop'], [2, 'noop']) }, c);
  t.regex(overwritten?.message ?? '', /but \{term 1, w\|a\|1\} was committed there/);
});

test('state machine safety: divergent or non-contiguous applies and foreign snapshots fail', (t) => {
  const canon = new Map<number, AppliedRecord>([
    [1, { index: 1, term: 1, digest: 'noop', chain: 11 }],
    [2, { index: 2, term: 1, digest: 'w|a|1', chain: 22 }],
  ]);
  const same = { index: 2, term: 1, digest: 'w|a|1', chain: 22 };
  t.is(checkStateMachineSafety(canon, { kind: 'apply', node: 'n2', prevApplied: 1, entry: same }), null);
  t.is(checkStateMachineSafety(canon, { kind: 'apply', node: 'n2', prevApplied: 2, entry: { index: 3, term: 2, digest: 'x', chain: 33 } }), null);
  t.is(checkStateMachineSafety(canon, { kind: 'apply', node: 'n2', prevApplied: 1, entry: { ...same, digest: 'w|a|2' } })?.checker, 'state-machine-safety');
  t.regex(checkStateMachineSafety(canon, { kind: 'apply', node: 'n2', prevApplied: 0, entry: same })?.message ?? '', /contiguous/);
  t.is(checkStateMachineSafety(canon, { kind: 'restore', node: 'n3', prevApplied: 0, index: 2, chain: 22 }), null);
  t.is(checkStateMachineSafety(canon, { kind: 'restore', node: 'n3', prevApplied: 0, index: 2, chain: 99 })?.checker, 'state-machine-safety');
  t.regex(checkStateMachineSafety(canon, { kind: 'restore', node: 'n3', prevApplied: 5, index: 2, chain: 22 })?.message ?? '', /behind/);
});

test('durability: a changed or lost committed entry fails; a stored commit index going back (unsynced) does not', (t) => {
  const c = committed([1, 1, 'noop', 1], [2, 1, 'w|a|1', 2]);
  const good = { node: 'n1', persistedCommit: 2, highestPersistedCommit: 2, log: log(1, [1, 'noop'], [1, 'w|a|1'], [2, 'w|z|0']) };
  t.is(checkDurability(good, c), null);
  t.is(checkDurability({ ...good, persistedCommit: 1 }, c), null, 'a commit-only hard state is not fsynced');
  t.regex(checkDurability({ ...good, persistedCommit: 1, log: log(1, [1, 'noop']) }, c)?.message ?? '', /log ends at 1, but it had stored 2 as committed/);
  t.regex(checkDurability({ ...good, persistedCommit: 1, log: log(1, [1, 'noop'], [2, 'w|z|0']) }, c)?.message ?? '', /committed index 2/);
  const acks: AckRecord[] = [{ key: 'a', value: '1', index: 2, seq: 3 }];
  t.is(checkAckedWritesSurvive('n1', acks, new Map([['a', { value: '1', index: 2 }]])), null);
  t.is(checkAckedWritesSurvive('n1', acks, new Map([['a', { value: '7', index: 9 }]])), null); // overwritten later
  t.is(checkAckedWritesSurvive('n1', acks, new Map())?.checker, 'durability');
  t.is(checkAckedWritesSurvive('n1', acks, new Map([['a', { value: '0', index: 1 }]]))?.checker, 'durability');
});

test('linearizable reads: a read must see every write acknowledged before it began', (t) => {
  const acks: AckRecord[] = [
    { key: 'k', value: 'v1', index: 5, seq: 10 },
    { key: 'k', value: 'v2', index: 8, seq: 30 },
  ];
  const read: ReadObservation = { ctx: 'r1', node: 'n2', key: 'k', kind: 'readIndex', issueSeq: 20, readIndex: 6, observed: { value: 'v1', index: 5 } };
  t.is(checkLinearizableRead(read, acks), null); // v2 was acknowledged after the read began
  t.is(checkLinearizableRead({ ...read, issueSeq: 40, readIndex: 8, observed: { value: 'v2', index: 8 } }, acks), null);
  const staleIndex = checkLinearizableRead({ ...read, readIndex: 4, observed: { value: 'v1', index: 5 } }, acks);
  t.regex(staleIndex?.message ?? '', /below the acknowledged write/);
  const staleValue = checkLinearizableRead({ ...read, issueSeq: 40, readIndex: 8, observed: { value: 'v1', index: 5 } }, acks);
  t.is(staleValue?.checker, 'linearizable-reads');
  t.is(checkLinearizableRead({ ...read, observed: undefined }, acks)?.checker, 'linearizable-reads');
});

test('liveness: no leader or an unapplied marker past the bound fails', (t) => {
  const base = { ticksSinceHeal: 50, boundTicks: 200, leader: '', voters: ['n1', 'n2', 'n3'], appliedMarker: [] };
  t.is(checkLiveness(base), null); // still within the bound
  t.is(checkLiveness({ ...base, ticksSinceHeal: 201, leader: 'n1', appliedMarker: ['n1', 'n2', 'n3'] }), null);
  t.regex(checkLiveness({ ...base, ticksSinceHeal: 201 })?.message ?? '', /no leader/);
  t.regex(checkLiveness({ ...base, ticksSinceHeal: 201, leader: 'n1', appliedMarker: ['n1', 'n2'] })?.message ?? '', /not applied on \[n3\]/);
  // Every node must be running again, members or not (a node left down was never restarted).
  const applied = { ...base, ticksSinceHeal: 201, leader: 'n1', appliedMarker: ['n1', 'n2', 'n3'] };
  t.regex(checkLiveness({ ...applied, down: ['n4'] })?.message ?? '', /not running: \[n4\]/);
  t.is(checkLiveness({ ...applied, down: [] }), null);
});

test('linearizable reads: a follower read must see the acknowledged writes at or below its minIndex', (t) => {
  const acks: AckRecord[] = [
    { key: 'k', value: 'v1', index: 5, seq: 10 },
    { key: 'k', value: 'v2', index: 8, seq: 11 },
  ];
  const read: ReadObservation = { ctx: 'f1', node: 'n3', key: 'k', kind: 'follower', issueSeq: 20, readIndex: 6, observed: { value: 'v1', index: 5 } };
  // The simulator checks a follower read against the acks its minIndex (here 5) covers.
  t.is(
    checkLinearizableRead(
      read,
      acks.filter((a) => a.index <= 5),
    ),
    null,
  );
  const stale = checkLinearizableRead(
    { ...read, observed: undefined },
    acks.filter((a) => a.index <= 5),
  );
  t.regex(stale?.message ?? '', /follower read f1 of k on n3 returned nothing/);
});

test('exactly-once: a client command applied at two indexes, or a retry answered with another index, fails', (t) => {
  const first = new Map([['c1#4', 7]]);
  t.is(checkExactlyOnce(first, { node: 'n1', session: 'c1#4', index: 7, duplicate: false, resultIndex: 7 }), null); // every node applies index 7
  t.is(checkExactlyOnce(first, { node: 'n2', session: 'c1#4', index: 12, duplicate: true, resultIndex: 7 }), null); // the retry at 12 is answered from the session
  t.is(checkExactlyOnce(first, { node: 'n2', session: 'c9#1', index: 3, duplicate: false, resultIndex: 3 }), null); // not seen before
  const twice = checkExactlyOnce(first, { node: 'n2', session: 'c1#4', index: 12, duplicate: false, resultIndex: 12 });
  t.is(twice?.checker, 'exactly-once');
  t.regex(twice!.message, /applied client command c1#4 at index 12, but it was already applied at index 7/);
  t.regex(checkExactlyOnce(first, { node: 'n2', session: 'c1#4', index: 12, duplicate: true, resultIndex: 9 })?.message ?? '', /result of index 9/);
});

test("client outcomes: waitFor must say committed exactly when the entry at that index is the client's", (t) => {
  const c = committed([3, 2, 'w|k|v1|c1#1', 1], [4, 3, 'w|k|v9|c2#1', 2]);
  const obs = { node: 'n1', term: 2, index: 3, digest: 'w|k|v1|c1#1', outcome: 'committed' as const };
  t.is(checkWaitOutcome(obs, c), null);
  t.is(checkWaitOutcome({ ...obs, index: 4, term: 2, outcome: 'lost' }, c), null); // another entry took index 4
  t.is(checkWaitOutcome({ ...obs, index: 9, outcome: 'lost' }, c), null); // nothing known there yet
  t.is(checkWaitOutcome({ ...obs, outcome: 'lost' }, c)?.checker, 'client-outcomes');
  t.regex(checkWaitOutcome({ ...obs, index: 4 }, c)?.message ?? '', /committed, but \{term 3, w\|k\|v9\|c2#1\} was committed there/);
  t.regex(checkWaitOutcome({ ...obs, index: 9 }, c)?.message ?? '', /nothing was ever applied at index 9/);
});
