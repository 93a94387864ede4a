import test from 'ava';
import { applyConfChangeTo, decodeConfChange, decodeConfEntry, encodeConfEntry, MalformedConfChangeError } from '../../src/raft/conf-change-codec.js';

test('a conf entry round-trips the change, its context and the resulting membership', (t) => {
  const context = new TextEncoder().encode('127.0.0.1:7005');
  const change = { type: 'addLearner' as const, nodeId: 'n5', context };
  const result = applyConfChangeTo({ voters: ['n1', 'n2', 'n3'], learners: [] }, change);
  t.deepEqual(result, { voters: ['n1', 'n2', 'n3'], learners: ['n5'] });
  const decoded = decodeConfEntry(encodeConfEntry(change, result));
  t.deepEqual(decoded.result, result);
  t.is(decoded.change.type, 'addLearner');
  t.is(decoded.change.nodeId, 'n5');
  t.deepEqual([...decoded.change.context!], [...context]);
  t.deepEqual(decodeConfChange(encodeConfEntry({ type: 'removeNode', nodeId: 'n2' }, { voters: ['n1'], learners: [] })), { type: 'removeNode', nodeId: 'n2' });
});

test('promoting a learner moves it to the voters; removing drops it from both sets', (t) => {
  const promoted = applyConfChangeTo({ voters: ['n1'], learners: ['n2'] }, { type: 'addVoter', nodeId: 'n2' });
  t.deepEqual(promoted, { voters: ['n1', 'n2'], learners: [] });
  t.deepEqual(applyConfChangeTo(promoted, { type: 'removeNode', nodeId: 'n1' }), { voters: ['n2'], learners: [] });
  // A voter is never demoted by addLearner (the core refuses that proposal).
  t.deepEqual(applyConfChangeTo(promoted, { type: 'addLearner', nodeId: 'n1' }), promoted);
});

test('truncated, trailing or unknown-version bytes are a typed error, never a crash', (t) => {
  const good = encodeConfEntry({ type: 'addVoter', nodeId: 'n4' }, { voters: ['n1', 'n4'], learners: [] });
  for (let cut = 0; cut < good.length; cut++) {
    t.throws(() => decodeConfEntry(good.slice(0, cut)), { instanceOf: MalformedConfChangeError }, `cut at ${cut}`);
  }
  t.throws(() => decodeConfEntry(Uint8Array.of(...good, 0)), { instanceOf: MalformedConfChangeError });
  t.throws(() => decodeConfEntry(Uint8Array.of(9, ...good.slice(1))), { instanceOf: MalformedConfChangeError });
  const badType = good.slice();
  badType[1] = 7;
  t.throws(() => decodeConfEntry(badType), { instanceOf: MalformedConfChangeError });
});
