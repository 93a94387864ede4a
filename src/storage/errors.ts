// Errors raised by the storage layer. Each names what is wrong and what an operator can do.

/**
 * Durable data is damaged somewhere a torn write cannot explain (not at the tail of the newest log
 * file, a gap in indexes, committed entries missing). The node must not start: restore this node's
 * data dir from a backup or wipe it and let it rejoin as a new member.
 */
export class StorageCorruptionError extends Error {
  override name = 'StorageCorruptionError';
  constructor(readonly file: string, readonly offset: number, readonly detail: string) {
    super(
      `storage corruption in ${file} at byte offset ${offset}: ${detail}; ` +
        'the node refuses to start rather than skip data — restore the data dir from a backup or wipe it and re-add the node',
    );
  }
}

/**
 * A write or fsync failed. After a failed fsync the page cache can no longer be trusted, so the log
 * stops accepting writes until the process restarts and replays what actually reached the disk.
 */
export class StorageFailedError extends Error {
  override name = 'StorageFailedError';
  constructor(readonly dir: string, override readonly cause: unknown) {
    super(
      `raft log in ${dir} failed a write or fsync (${cause instanceof Error ? cause.message : String(cause)}); ` +
        'it accepts no more writes — check the disk (space, permissions, I/O errors) and restart the node',
    );
  }
}

/** The storage was used after close(). */
export class StorageClosedError extends Error {
  override name = 'StorageClosedError';
  constructor(readonly what: string) {
    super(`${what} is closed; open it again before use`);
  }
}

/** A StorageUpdate or compaction request that would break the log's invariants; nothing was written. */
export class InvalidStorageUpdateError extends Error {
  override name = 'InvalidStorageUpdateError';
  constructor(readonly detail: string) {
    super(`rejected storage update (nothing was written): ${detail}`);
  }
}

/** Bytes that do not decode to a well-formed Command / ConfChange / state-machine snapshot. */
export class InvalidCommandError extends Error {
  override name = 'InvalidCommandError';
  constructor(readonly detail: string) {
    super(`invalid command: ${detail}`);
  }
}

/** A state-machine snapshot that cannot be restored (damaged or from an unknown format); state is unchanged. */
export class InvalidSnapshotError extends Error {
  override name = 'InvalidSnapshotError';
  constructor(readonly detail: string) {
    super(`invalid state-machine snapshot (state left unchanged): ${detail}`);
  }
}
