import test from 'ava';
import { randomBytes } from 'node:crypto';
import { InvalidCommandError, MAX_TXN_DEPTH, decodeCommand, encodeCommand, type Command, type Op } from '../../src/storage/index.js';
import { packr } from '../../src/storage/codec.js';

const b = (s: string) => new TextEncoder().encode(s);

test('commands round-trip through encode/decode, including nested txns', (t) => {
  const command: Command = {
    clientId: 'c-1',
    seq: 7,
    firstUnacked: 3,
    op: {
      op: 'txn',
      compares: [
        { key: b('k'), target: 'value', result: 'eq', value: b('v') },
        { key: b('k'), target: 'modIndex', result: 'lt', number: 9 },
      ],
      success: [
        { op: 'put', key: b('k'), value: new Uint8Array() },
        { op: 'deleteRange', start: b('a'), end: new Uint8Array() },
      ],
      failure: [{ op: 'txn', compares: [], success: [{ op: 'delete', key: b('x') }], failure: [] }],
    },
  };
  const decoded = decodeCommand(encodeCommand(command));
  t.deepEqual(JSON.parse(JSON.stringify(decoded, bytesAsArrays)), JSON.parse(JSON.stringify(command, bytesAsArrays)));
  t.true(decoded.op.op === 'txn' && decoded.op.compares[0]!.value instanceof Uint8Array);
});

test('garbage and malformed commands raise InvalidCommandError, never anything else', (t) => {
  const bad: unknown[] = [
    42,
    'put',
    [],
    { clientId: 1, seq: 0, firstUnacked: 0, op: { op: 'put', key: b('k'), value: b('v') } },
    { clientId: '', seq: -1, firstUnacked: 0, op: { op: 'put', key: b('k'), value: b('v') } },
    { clientId: '', seq: 1.5, firstUnacked: 0, op: { op: 'put', key: b('k'), value: b('v') } },
    { clientId: '', seq: 0, firstUnacked: 0, op: { op: 'put', key: new Uint8Array(), value: b('v') } },
    { clientId: '', seq: 0, firstUnacked: 0, op: { op: 'put', key: 'k', value: b('v') } },
    { clientId: '', seq: 0, firstUnacked: 0, op: { op: 'increment', key: b('k') } },
    {
      clientId: '',
      seq: 0,
      firstUnacked: 0,
      op: { op: 'txn', compares: [{ key: b('k'), target: 'value', result: 'lt', value: b('') }], success: [], failure: [] },
    },
    { clientId: '', seq: 0, firstUnacked: 0, op: { op: 'txn', compares: [{ key: b('k'), target: 'version', result: 'eq' }], success: [], failure: [] } },
    { clientId: '', seq: 0, firstUnacked: 0, op: { op: 'txn', compares: {}, success: [], failure: [] } },
  ];
  for (const value of bad) t.throws(() => decodeCommand(packr.pack(value)), { instanceOf: InvalidCommandError }, JSON.stringify(value));
  t.throws(() => decodeCommand(new Uint8Array()), { instanceOf: InvalidCommandError });
  t.throws(() => decodeCommand(new Uint8Array([0xc1])), { instanceOf: InvalidCommandError });
  for (let i = 0; i < 300; i++) {
    const bytes = randomBytes(1 + (i % 40));
    try {
      decodeCommand(bytes);
    } catch (err) {
      if (!(err instanceof InvalidCommandError)) t.fail(`random bytes ${bytes.toString('hex')} threw ${String(err)}`);
    }
  }
  t.pass();
});

test('txns nested deeper than MAX_TXN_DEPTH are rejected', (t) => {
  let op: Op = { op: 'delete', key: b('k') };
  for (let i = 0; i <= MAX_TXN_DEPTH; i++) op = { op: 'txn', compares: [], success: [op], failure: [] };
  t.throws(() => encodeCommand({ clientId: '', seq: 0, firstUnacked: 0, op }), { instanceOf: InvalidCommandError, message: /nested/ });
  const ok = (op as Extract<Op, { op: 'txn' }>).success[0]!;
  t.notThrows(() => decodeCommand(encodeCommand({ clientId: '', seq: 0, firstUnacked: 0, op: ok })));
});

function bytesAsArrays(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: [...value] };
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return { bytes: (value as { data: number[] }).data };
  }
  return value;
}
