// Session reads are monotonic across nodes. One follower is cut off from the leader (it keeps
// serving follower reads from its old state) while writes go on; a client alternates between the
// fresh follower and the stale one. Plain follower reads go backwards — the reason session mode
// exists — and session reads never do: the stale node cannot reach the client's watermark, so the
// SDK moves the read to a node that can.
import test from 'ava';
import { connect } from '../../src/client/kv-client.js';
import { DrillCluster } from '../../src/drill/drill-cluster.js';

let cluster: DrillCluster;

test.before(async () => {
  cluster = await DrillCluster.start({ raft: { tickMs: 10, electionTicks: 30, heartbeatTicks: 3 } });
});

test.after.always(async () => {
  await cluster?.close();
});

test('session reads never go back in the log across nodes; plain follower reads do', async (t) => {
  t.timeout(60_000);
  const admin = await connect({ endpoints: cluster.endpoints });
  try {
    await admin.put('s', 'v0');
    const leader = (await admin.status()).find((s) => s.status?.role === 'leader')!.status!;
    const [fresh, stale] = cluster.nodes.filter((n) => n.id !== leader.id);
    // The stale follower hears nothing more from the leader; it still answers reads.
    cluster.links.get(`${leader.id}->${stale!.id}`)!.cut();
    cluster.links.get(`${stale!.id}->${leader.id}`)!.cut();
    let last = 0;
    for (let i = 1; i <= 5; i++) last = (await admin.put('s', `v${i}`)).index;
    // Round robin starts at the first endpoint: fresh, stale, fresh, stale, ...
    const endpoints = [fresh!.clientAddress, stale!.clientAddress];
    const plain = await connect({ endpoints, discover: false, attemptTimeoutMs: 400, deadlineMs: 5_000 });
    const session = await connect({ endpoints, discover: false, attemptTimeoutMs: 400, deadlineMs: 5_000 });
    try {
      const seen = { plain: [] as number[], session: [] as number[] };
      const values = { plain: [] as string[], session: [] as string[] };
      for (let i = 0; i < 6; i++) {
        const p = await plain.getDetail('s', { consistency: 'follower' });
        seen.plain.push(p.appliedIndex);
        values.plain.push(p.item?.text() ?? '');
        const s = await session.getDetail('s', { consistency: 'session' });
        seen.session.push(s.appliedIndex);
        values.session.push(s.item?.text() ?? '');
      }
      t.log(seen, values);
      const backwards = (xs: number[]) => xs.filter((x, i) => i > 0 && x < xs[i - 1]!).length;
      t.true(backwards(seen.plain) > 0, 'plain follower reads alternate between the fresh and the stale node');
      t.is(backwards(seen.session), 0);
      t.true(
        values.session.every((v) => v === 'v5'),
        `session reads: ${values.session.join(',')}`,
      );
      t.true(session.sessionIndex >= last);
      // Read-your-writes through the session too: a write by the session client is seen next.
      const w = await session.put('s', 'mine');
      const after = await session.getDetail('s', { consistency: 'session' });
      t.is(after.item?.text(), 'mine');
      t.true(after.appliedIndex >= w.index);
    } finally {
      await plain.close();
      await session.close();
    }
  } finally {
    cluster.healAll();
    await admin.close();
  }
});
