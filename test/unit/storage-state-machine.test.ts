import { encodeConfEntry } from '../../src/raft/conf-change-codec.js';
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../src/raft/types.js';
import {
  InvalidSnapshotError,
  LevelStateMachine,
  MemoryStateMachine,
  encodeCommand,
  prefixEnd,
  type Command,
  type CommandResult,
  type Op,
  type StateMachine,
} from '../../src/storage/index.js';

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string) => te.encode(s);
const s = (u: Uint8Array) => td.decode(u);
const conf = { voters: ['n1'], learners: [] };
const sameBytes = (x: Uint8Array, y: Uint8Array) => Buffer.compare(x, y) === 0;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qkv-sm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Feeds commands to a machine as consecutive log entries. */
class Log {
  index = 0;
  constructor(
    readonly sm: StateMachine,
    readonly term = 1,
  ) {
    this.index = sm.appliedIndex();
  }
  entry(op: Op, session: Partial<Command> = {}): Entry {
    const command: Command = { clientId: '', seq: 0, firstUnacked: 0, op, ...session };
    return { index: ++this.index, term: this.term, type: 'normal', data: encodeCommand(command) };
  }
  raw(data: Uint8Array, type: Entry['type'] = 'normal'): Entry {
    return { index: ++this.index, term: this.term, type, data };
  }
  async apply(...entries: Entry[]): Promise<(CommandResult | null)[]> {
    return this.sm.apply(entries);
  }
  async one(op: Op, session: Partial<Command> = {}): Promise<CommandResult> {
    return (await this.apply(this.entry(op, session)))[0]!;
  }
}

const put = (key: string, value: string): Op => ({ op: 'put', key: b(key), value: b(value) });

async function dump(sm: StateMachine): Promise<[string, string, number, number, number][]> {
  const { items } = await sm.scan({ start: new Uint8Array(), end: new Uint8Array(), limit: 0 });
  return items.map((kv) => [s(kv.key), s(kv.value), kv.version, kv.createIndex, kv.modIndex]);
}

const impls: [string, (t: ExecutionContext, opts?: { maxSessions?: number }) => Promise<StateMachine>][] = [
  [
    'level',
    async (t, opts) => {
      const sm = await LevelStateMachine.open({ dir: await tempDir(t), ...opts });
      t.teardown(() => sm.close());
      return sm;
    },
  ],
  ['memory', async (_t, opts) => new MemoryStateMachine(opts)],
];

for (const [name, make] of impls) {
  test(`${name}: put/get track version, createIndex and modIndex; delete removes`, async (t) => {
    const log = new Log(await make(t));
    t.deepEqual((await log.one(put('a', '1'))).result, { op: 'put', prevExisted: false });
    t.deepEqual((await log.one(put('a', '2'))).result, { op: 'put', prevExisted: true });
    const kv = await log.sm.get(b('a'));
    t.deepEqual(kv && [s(kv.value), kv.version, kv.createIndex, kv.modIndex], ['2', 2, 1, 2]);
    t.deepEqual((await log.one({ op: 'delete', key: b('a') })).result, { op: 'delete', deleted: 1 });
    t.deepEqual((await log.one({ op: 'delete', key: b('a') })).result, { op: 'delete', deleted: 0 });
    t.is(await log.sm.get(b('a')), undefined);
    await log.one(put('a', '3'));
    const again = await log.sm.get(b('a'));
    t.deepEqual(again && [again.version, again.createIndex], [1, 5], 'recreated key starts a new version history');
    t.is(log.sm.appliedIndex(), 5);
  });

  test(`${name}: scan honours start, exclusive end, limit and continueFrom`, async (t) => {
    const log = new Log(await make(t));
    await log.apply(...['a', 'b', 'ba', 'bb', 'c', 'd'].map((k) => log.entry(put(k, k.toUpperCase()))));
    const page1 = await log.sm.scan({ start: b('b'), end: b('d'), limit: 2 });
    t.deepEqual(
      page1.items.map((kv) => s(kv.key)),
      ['b', 'ba'],
    );
    t.is(s(page1.continueFrom!), 'bb');
    const page2 = await log.sm.scan({ start: page1.continueFrom!, end: b('d'), limit: 2 });
    t.deepEqual(
      page2.items.map((kv) => s(kv.key)),
      ['bb', 'c'],
    );
    t.is(page2.continueFrom, undefined);
    const open = await log.sm.scan({ start: b('c'), end: new Uint8Array(), limit: 10 });
    t.deepEqual(
      open.items.map((kv) => [s(kv.key), s(kv.value)]),
      [
        ['c', 'C'],
        ['d', 'D'],
      ],
    );
    const prefix = await log.sm.scan({ start: b('b'), end: prefixEnd(b('b')), limit: 10 });
    t.deepEqual(
      prefix.items.map((kv) => s(kv.key)),
      ['b', 'ba', 'bb'],
    );
  });

  test(`${name}: deleteRange deletes [start, end) and counts; a prefix range works`, async (t) => {
    const log = new Log(await make(t));
    await log.apply(...['a', 'b1', 'b2', 'b3', 'c'].map((k) => log.entry(put(k, 'x'))));
    t.deepEqual((await log.one({ op: 'deleteRange', start: b('b'), end: prefixEnd(b('b')) })).result, { op: 'deleteRange', deleted: 3 });
    t.deepEqual(
      (await dump(log.sm)).map((r) => r[0]),
      ['a', 'c'],
    );
    t.deepEqual((await log.one({ op: 'deleteRange', start: b('b'), end: new Uint8Array() })).result, { op: 'deleteRange', deleted: 1 });
    t.deepEqual(
      (await dump(log.sm)).map((r) => r[0]),
      ['a'],
    );
  });

  test(`${name}: later entries in one batch see earlier writes of the batch`, async (t) => {
    const log = new Log(await make(t));
    const results = await log.apply(
      log.entry(put('k', 'v1')),
      log.entry(put('k', 'v2')),
      log.entry({ op: 'txn', compares: [{ key: b('k'), target: 'version', result: 'eq', number: 2 }], success: [put('ok', 'yes')], failure: [] }),
      log.entry({ op: 'deleteRange', start: b('a'), end: b('z') }),
      log.entry(put('after', '1')),
    );
    t.deepEqual(
      results.map((r) => r?.result),
      [
        { op: 'put', prevExisted: false },
        { op: 'put', prevExisted: true },
        { op: 'txn', succeeded: true, results: [{ op: 'put', prevExisted: false }] },
        { op: 'deleteRange', deleted: 2 },
        { op: 'put', prevExisted: false },
      ],
    );
    t.deepEqual(await dump(log.sm), [['after', '1', 1, 5, 5]]);
  });

  test(`${name}: txn compares value, version and modIndex and runs the matching branch (nested)`, async (t) => {
    const log = new Log(await make(t));
    await log.one(put('k', 'v')); // index 1
    const cas = (expect: string): Op => ({
      op: 'txn',
      compares: [{ key: b('k'), target: 'value', result: 'eq', value: b(expect) }],
      success: [put('k', 'swapped')],
      failure: [{ op: 'txn', compares: [{ key: b('missing'), target: 'version', result: 'eq', number: 0 }], success: [put('fallback', '1')], failure: [] }],
    });
    t.deepEqual((await log.one(cas('other'))).result, {
      op: 'txn',
      succeeded: false,
      results: [{ op: 'txn', succeeded: true, results: [{ op: 'put', prevExisted: false }] }],
    });
    t.deepEqual((await log.one(cas('v'))).result, { op: 'txn', succeeded: true, results: [{ op: 'put', prevExisted: true }] });
    t.is(s((await log.sm.get(b('k')))!.value), 'swapped');
    const guard = (result: 'lt' | 'gt' | 'neq', n: number): Op => ({
      op: 'txn',
      compares: [{ key: b('k'), target: 'modIndex', result, number: n }],
      success: [],
      failure: [],
    });
    const ok = async (op: Op) => ((await log.one(op)).result as { succeeded: boolean }).succeeded;
    t.true(await ok(guard('gt', 2))); // modIndex is 3
    t.false(await ok(guard('lt', 3)));
    t.true(await ok(guard('neq', 1)));
    t.true(await ok({ op: 'txn', compares: [{ key: b('nope'), target: 'value', result: 'neq', value: b('') }], success: [], failure: [] }));
  });

  test(`${name}: no-op, conf and undecodable entries do not crash and only advance the applied index`, async (t) => {
    const log = new Log(await make(t));
    const results = await log.apply(
      log.raw(new Uint8Array()),
      log.raw(encodeConfEntry({ type: 'addLearner', nodeId: 'n4' }, { voters: ['n1'], learners: ['n4'] }), 'conf'),
      log.raw(new Uint8Array([0xc1, 0xff, 0x00])),
      log.raw(encodeCommand({ clientId: '', seq: 0, firstUnacked: 0, op: put('x', '1') }).slice(0, 5)),
      log.entry(put('y', '1')),
    );
    t.is(results[0], null);
    t.is(results[1], null);
    t.like(results[2], { index: 3, result: { op: 'error', name: 'InvalidCommandError' } });
    t.like(results[3], { index: 4, result: { op: 'error', name: 'InvalidCommandError' } });
    t.deepEqual(results[4]?.result, { op: 'put', prevExisted: false });
    t.is(log.sm.appliedIndex(), 5);
    t.deepEqual(
      (await dump(log.sm)).map((r) => r[0]),
      ['y'],
    );
  });

  test(`${name}: a retried (clientId, seq) is applied once, even out of order and within one batch`, async (t) => {
    const log = new Log(await make(t));
    const c = { clientId: 'c1', firstUnacked: 1 };
    const first = await log.one(put('n', 'a'), { ...c, seq: 1 });
    const retry = await log.one(put('n', 'b'), { ...c, seq: 1 });
    t.deepEqual(retry, { ...first, duplicate: true });
    t.is((await log.sm.get(b('n')))!.version, 1);
    // seq 6 lands before seq 5; both apply once; retries of each are answered from the table.
    const r6 = await log.one(put('six', '6'), { ...c, seq: 6 });
    const r5 = await log.one(put('five', '5'), { ...c, seq: 5 });
    const batch = await log.apply(
      log.entry(put('six', 'X'), { ...c, seq: 6 }),
      log.entry(put('seven', '7'), { ...c, seq: 7 }),
      log.entry(put('seven', 'Y'), { ...c, seq: 7 }),
    );
    t.deepEqual(batch[0], { ...r6, duplicate: true });
    t.false(batch[1]!.duplicate ?? false);
    t.deepEqual(batch[2], { ...batch[1]!, duplicate: true });
    t.deepEqual(await log.one(put('five', 'Z'), { ...c, seq: 5 }), { ...r5, duplicate: true });
    t.deepEqual(
      (await dump(log.sm)).map((r) => [r[0], r[1], r[2]]),
      [
        ['five', '5', 1],
        ['n', 'a', 1],
        ['seven', '7', 1],
        ['six', '6', 1],
      ],
    );
    // The client acknowledges everything below 7: a late retry of 5 cannot be answered any more.
    await log.one(put('eight', '8'), { clientId: 'c1', firstUnacked: 7, seq: 8 });
    const stale = await log.one(put('five', 'late'), { clientId: 'c1', firstUnacked: 1, seq: 5 });
    t.like(stale.result, { op: 'error', name: 'StaleSequenceError' });
    t.is(s((await log.sm.get(b('five')))!.value), '5');
    // Other clients have their own windows; clientId '' has none.
    t.false((await log.one(put('o', '1'), { clientId: 'c2', seq: 5, firstUnacked: 5 })).duplicate ?? false);
    await log.one(put('anon', '1'));
    await log.one(put('anon', '2'));
    t.is((await log.sm.get(b('anon')))!.version, 2);
  });

  test(`${name}: the session table evicts the least recently used client beyond maxSessions`, async (t) => {
    const log = new Log(await make(t, { maxSessions: 2 }));
    await log.one(put('a', '1'), { clientId: 'A', seq: 1 });
    await log.one(put('b', '1'), { clientId: 'B', seq: 1 });
    await log.one(put('a', '2'), { clientId: 'A', seq: 2 }); // A is now more recent than B
    await log.one(put('c', '1'), { clientId: 'C', seq: 1 }); // evicts B
    t.true((await log.one(put('a', 'x'), { clientId: 'A', seq: 2 })).duplicate);
    t.true((await log.one(put('c', 'x'), { clientId: 'C', seq: 1 })).duplicate);
    t.falsy((await log.one(put('b', 'x'), { clientId: 'B', seq: 1 })).duplicate, 'an evicted session is forgotten');
  });

  test(`${name}: snapshot then restore into a fresh machine yields identical state and sessions`, async (t) => {
    const log = new Log(await make(t), 3);
    await log.apply(...['k1', 'k2', 'k3'].map((k, i) => log.entry(put(k, `v${i}`), { clientId: 'c', seq: i + 1, firstUnacked: 1 })));
    await log.one({ op: 'delete', key: b('k2') });
    const snap = await log.sm.snapshot();
    t.is(snap.index, 4);
    for (const [target, makeTarget] of impls) {
      const fresh = await makeTarget(t);
      await new Log(fresh).one(put('stale', 'gone')); // pre-existing state is replaced entirely
      await fresh.restore({ meta: { index: snap.index, term: 3, conf }, data: snap.data });
      t.is(fresh.appliedIndex(), 4, target);
      t.deepEqual(await dump(fresh), await dump(log.sm), target);
      t.true(sameBytes((await fresh.snapshot()).data, snap.data), `${target}: byte-identical snapshot`);
      const retry = await new Log(fresh).one(put('k1', 'again'), { clientId: 'c', seq: 1, firstUnacked: 1 });
      t.true(retry.duplicate, `${target}: sessions travel with the snapshot`);
      t.is(retry.index, 1);
    }
  });

  test(`${name}: a garbage snapshot is rejected and leaves the state unchanged`, async (t) => {
    const log = new Log(await make(t));
    await log.one(put('keep', 'me'));
    const before = await log.sm.snapshot();
    await t.throwsAsync(log.sm.restore({ meta: { index: 9, term: 1, conf }, data: new Uint8Array([1, 2, 3]) }), { instanceOf: InvalidSnapshotError });
    await t.throwsAsync(log.sm.restore({ meta: { index: 9, term: 1, conf }, data: before.data }), { instanceOf: InvalidSnapshotError, message: /meta.index/ });
    t.true(sameBytes((await log.sm.snapshot()).data, before.data));
    t.is(log.sm.appliedIndex(), 1);
  });
}

test('level: applied index, data and sessions survive reopen', async (t) => {
  const dir = await tempDir(t);
  const sm1 = await LevelStateMachine.open({ dir });
  const log1 = new Log(sm1, 2);
  const first = await log1.one(put('k', 'v'), { clientId: 'c', seq: 1 });
  await log1.apply(log1.raw(new Uint8Array()));
  await sm1.close();
  const sm2 = await LevelStateMachine.open({ dir });
  t.teardown(() => sm2.close());
  t.is(sm2.appliedIndex(), 2);
  t.is(sm2.appliedTerm(), 2);
  t.is(s((await sm2.get(b('k')))!.value), 'v');
  const retry = await new Log(sm2).one(put('k', 'v2'), { clientId: 'c', seq: 1 });
  t.deepEqual(retry, { ...first, duplicate: true });
});

test('level: a snapshot is a consistent view while applies continue', async (t) => {
  const sm = await LevelStateMachine.open({ dir: await tempDir(t) });
  t.teardown(() => sm.close());
  const log = new Log(sm);
  await log.one(put('a', '1'));
  const pending = sm.snapshot(); // pins the view now
  await log.one(put('b', '2'));
  const snap = await pending;
  t.is(snap.index, 1);
  const fresh = new MemoryStateMachine();
  await fresh.restore({ meta: { index: snap.index, term: 1, conf }, data: snap.data });
  t.deepEqual(
    (await dump(fresh)).map((r) => r[0]),
    ['a'],
  );
});

test('redelivered entries at or below the applied index are not applied twice', async (t) => {
  const sm = new MemoryStateMachine();
  const log = new Log(sm);
  const e = log.entry(put('k', 'v'));
  await sm.apply([e]);
  t.deepEqual(await sm.apply([e]), [null]);
  t.is((await sm.get(b('k')))!.version, 1);
});

test('prefixEnd gives the exclusive upper bound of a prefix', (t) => {
  t.deepEqual(prefixEnd(b('ab')), b('ac'));
  t.deepEqual(prefixEnd(new Uint8Array([0x61, 0xff])), new Uint8Array([0x62]));
  t.deepEqual(prefixEnd(new Uint8Array([0xff, 0xff])), new Uint8Array());
  t.deepEqual(prefixEnd(new Uint8Array()), new Uint8Array());
  const fromGrpc = Buffer.from('ab');
  t.deepEqual([...prefixEnd(fromGrpc)], [...b('ac')]);
  t.is(fromGrpc.toString(), 'ab', 'a Buffer prefix is not modified (Buffer.slice is a view)');
});

// ---- leases in apply ----

const putWithLease = (key: string, value: string, lease: number): Op => ({ op: 'put', key: b(key), value: b(value), lease });

/** A lease workload; returns every result and event, in order, so two machines can be compared. */
async function leaseWorkload(sm: StateMachine): Promise<{ results: unknown[]; events: unknown[] }> {
  const events: unknown[] = [];
  sm.onApply((batch) => {
    for (const e of batch) events.push({ type: e.type, key: s(e.key), value: s(e.value), index: e.index, prev: e.prevValue && s(e.prevValue), lease: e.lease });
  });
  const log = new Log(sm);
  const results: unknown[] = [];
  const one = async (op: Op) => {
    const r = await log.one(op);
    results.push(r);
    return r;
  };
  const a = (await one({ op: 'leaseGrant', ttlMs: 1_000 })).index;
  const c = (await one({ op: 'leaseGrant', ttlMs: 2_000 })).index;
  await one(putWithLease('x', '1', a));
  await one(putWithLease('y', '2', a));
  await one(putWithLease('z', '3', c));
  await one(put('y', 'plain')); // detaches y from lease a
  await one(putWithLease('ghost', '0', 999)); // unknown lease: refused
  await one({ op: 'txn', compares: [], success: [put('t1', '1'), putWithLease('t2', '2', 999)], failure: [] }); // refused whole
  await one({ op: 'leaseRevoke', id: a });
  await one({ op: 'leaseRevoke', id: a }); // gone now: refused
  await one({ op: 'leaseExpire', ids: [a, c] }); // a is gone: skipped
  sm.onApply(undefined);
  return { results, events };
}

for (const [name, make] of impls) {
  test(`${name}: a lease grant's id is its log index; a revoke deletes its keys in the same entry and reports them`, async (t) => {
    const sm = await make(t);
    const log = new Log(sm);
    const events: { type: string; key: string; index: number }[] = [];
    sm.onApply((batch) => events.push(...batch.map((e) => ({ type: e.type, key: s(e.key), index: e.index }))));
    const grant = await log.one({ op: 'leaseGrant', ttlMs: 5_000 });
    t.deepEqual(grant.result, { op: 'leaseGrant', id: grant.index, ttlMs: 5_000 });
    const id = grant.index;
    await log.one(putWithLease('a', '1', id));
    await log.one(putWithLease('b', '2', id));
    await log.one(put('c', '3'));
    t.is((await sm.get(b('a')))?.lease, id);
    t.deepEqual(sm.lease(id), { id, ttlMs: 5_000, keys: 2 });
    const revoke = await log.one({ op: 'leaseRevoke', id });
    t.deepEqual(revoke.result, { op: 'leaseRevoke', deleted: 2 });
    t.deepEqual(
      events.filter((e) => e.type === 'delete'),
      [
        { type: 'delete', key: 'a', index: revoke.index },
        { type: 'delete', key: 'b', index: revoke.index },
      ],
    );
    t.deepEqual(
      (await dump(sm)).map((r) => r[0]),
      ['c'],
    );
    t.is(sm.lease(id), undefined);
    t.deepEqual(sm.leases(), []);
  });

  test(`${name}: a command naming an unknown lease is refused and changes nothing`, async (t) => {
    const sm = await make(t);
    const log = new Log(sm);
    const id = (await log.one({ op: 'leaseGrant', ttlMs: 5_000 })).index;
    await log.one(putWithLease('k', 'v', id));
    const before = await sm.snapshot();
    const events: unknown[] = [];
    sm.onApply((batch) => events.push(...batch));
    const refusedPut = await log.one(putWithLease('k', 'other', id + 100));
    t.like(refusedPut.result, { op: 'error', name: 'LeaseNotFoundError', lease: id + 100 });
    const refusedTxn = await log.one({ op: 'txn', compares: [], success: [put('n', '1'), putWithLease('m', '2', id + 100)], failure: [] });
    t.like(refusedTxn.result, { op: 'error', name: 'LeaseNotFoundError' });
    t.like((await log.one({ op: 'leaseRevoke', id: id + 100 })).result, { op: 'error', name: 'LeaseNotFoundError' });
    t.deepEqual(events, [], 'no change events');
    t.is(s((await sm.get(b('k')))!.value), 'v');
    t.is(await sm.get(b('n')), undefined, 'no part of the txn was applied');
    t.deepEqual(sm.leases(), [{ id, ttlMs: 5_000, keys: 1 }]);
    // The same data as before the refusals (the snapshots differ only in the applied index).
    const fresh = new MemoryStateMachine();
    await fresh.restore({ meta: { index: before.index, term: 1, conf }, data: before.data });
    t.deepEqual(await dump(sm), await dump(fresh));
  });

  test(`${name}: a lease expiry deletes the keys of the leases still alive and skips the rest`, async (t) => {
    const sm = await make(t);
    const log = new Log(sm);
    const a = (await log.one({ op: 'leaseGrant', ttlMs: 1_000 })).index;
    const c = (await log.one({ op: 'leaseGrant', ttlMs: 1_000 })).index;
    await log.one(putWithLease('a1', '1', a));
    await log.one(putWithLease('c1', '1', c));
    await log.one({ op: 'leaseRevoke', id: c });
    const expire = await log.one({ op: 'leaseExpire', ids: [a, c] });
    t.deepEqual(expire.result, { op: 'leaseExpire', expired: 1, deleted: 1 });
    t.deepEqual(await dump(sm), []);
    t.deepEqual(sm.leases(), []);
  });
}

test('the memory and LevelDB machines give identical lease results, events and snapshots', async (t) => {
  const level = await impls[0]![1](t);
  const memory = await impls[1]![1](t);
  const fromLevel = await leaseWorkload(level);
  const fromMemory = await leaseWorkload(memory);
  t.deepEqual(fromLevel, fromMemory);
  t.true(fromLevel.events.length > 0);
  t.true(sameBytes((await level.snapshot()).data, (await memory.snapshot()).data), 'byte-identical snapshots');
  t.deepEqual(level.leases(), memory.leases());
  t.deepEqual(level.leases(), [], 'both leases ended');
  // Spot checks of the shared sequence: y left lease a when rewritten without it, the refusals refused.
  const ops = fromLevel.results.map((r) => (r as CommandResult).result);
  t.like(ops[6], { op: 'error', name: 'LeaseNotFoundError', lease: 999 });
  t.like(ops[7], { op: 'error', name: 'LeaseNotFoundError' });
  t.deepEqual(ops[8], { op: 'leaseRevoke', deleted: 1 });
  t.like(ops[9], { op: 'error', name: 'LeaseNotFoundError' });
  t.deepEqual(ops[10], { op: 'leaseExpire', expired: 1, deleted: 1 });
  t.deepEqual(
    (await dump(level)).map((r) => r[0]),
    ['y'],
  );
});
