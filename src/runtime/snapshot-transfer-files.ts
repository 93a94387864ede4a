// Storage's snapshot files as the transport sees them (the transport imports nothing of storage):
// a message's snapshot data that is a file reference is streamed from the file, and an incoming
// file is streamed into a new one whose reference the follower's Raft core then carries.
import { type SnapshotStore, decodeSnapshotRef, encodeSnapshotRef } from '../storage/snapshot-store.js';
import type { SnapshotFiles } from '../transport/transport.js';

export function snapshotFilesFor(store: SnapshotStore): SnapshotFiles {
  return {
    describe: (data) => decodeSnapshotRef(data),
    openReader: async (data) => {
      const ref = decodeSnapshotRef(data);
      if (!ref) throw new Error('not a snapshot file reference');
      return store.openReader(ref);
    },
    createWriter: async () => {
      const writer = await store.create();
      return {
        append: (bytes) => writer.append(bytes),
        get bytes() {
          return writer.bytes;
        },
        get checksum() {
          return writer.checksum;
        },
        commit: async (index, term) => encodeSnapshotRef(await writer.commit(index, term)),
        abort: () => writer.abort(),
      };
    },
  };
}
