// Storage's snapshot files as the transport sees them (the transport imports nothing of storage):
// a message's snapshot data that is a file reference is streamed from the file, and an incoming
// file is streamed into a new one whose reference the follower's Raft core then carries. With a
// state machine that can stage a restore, the incoming file's state is built as it arrives
// (snapshot-staging.ts), so that installing it is only a swap.
import type { Logger } from 'pino';
import { type SnapshotStore, decodeSnapshotRef, encodeSnapshotRef } from '../storage/snapshot-store.js';
import type { StateMachine } from '../storage/state-machine.js';
import type { SnapshotFiles } from '../transport/transport.js';
import { SnapshotStaging } from './snapshot-staging.js';

export function snapshotFilesFor(store: SnapshotStore, stager?: { stateMachine: StateMachine; logger?: Logger }): SnapshotFiles {
  return {
    describe: (data) => decodeSnapshotRef(data),
    openReader: async (data) => {
      const ref = decodeSnapshotRef(data);
      if (!ref) throw new Error('not a snapshot file reference');
      return store.openReader(ref);
    },
    createWriter: async (announced) => {
      const writer = await store.create();
      const staging = stager ? await SnapshotStaging.start(stager.stateMachine, announced, stager.logger) : undefined;
      return {
        append: async (bytes) => {
          await writer.append(bytes);
          await staging?.push(bytes);
        },
        get bytes() {
          return writer.bytes;
        },
        get checksum() {
          return writer.checksum;
        },
        commit: async (index, term) => {
          let ref: Awaited<ReturnType<typeof writer.commit>>;
          try {
            ref = await writer.commit(index, term);
          } catch (err) {
            await staging?.abort();
            throw err;
          }
          await staging?.commit(ref);
          return encodeSnapshotRef(ref);
        },
        abort: async () => {
          await writer.abort();
          await staging?.abort();
        },
      };
    },
  };
}
