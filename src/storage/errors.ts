// Errors raised by the storage layer. Each names what is wrong and what an operator can do.

/**
 * Durable data is damaged somewhere a torn write cannot explain (not at the tail of the newest log
 * file, a gap in indexes, committed entries missing). The node must not start: restore this node's
 * data dir from a backup or wipe it and let it rejoin as a new member.
 */
export class StorageCorruptionError extends Error {
  override name = 'StorageCorruptionError';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly detail: string,
  ) {
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
  constructor(
    readonly dir: string,
    override readonly cause: unknown,
  ) {
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

/**
 * The node's state machine (its LevelDB under `dir`) holds damaged data: a value that fails its
 * checksum, a table LevelDB cannot read, or log records LevelDB dropped while opening. The machine
 * never returns such data; once one is found it refuses every read (and every later open) until the
 * node is rebuilt from the leader with `fix`, which moves the data dir aside (it is never deleted).
 */
export class StateMachineCorruptionError extends Error {
  override name = 'StateMachineCorruptionError';
  constructor(
    /** The LevelDB directory (<dataDir>/kv). */
    readonly dir: string,
    /** Where: `key <hex>` (the user key, truncated), `session <id>`, `applied index`, or `database`. */
    readonly key: string,
    readonly detail: string,
    /** The command that rebuilds this node, e.g. `quorumkv rebuild --config cluster.json --node n2`. */
    readonly fix: string,
  ) {
    super(
      `state machine in ${dir} is corrupted at ${key}: ${detail}; the node refuses to serve this data — ` +
        `stop the node, run \`${fix}\` (moves the data dir aside, never deletes it) and start the node again: it is rebuilt from the leader`,
    );
  }
}

/**
 * The data dir holds a combination of files no clean history produces — the Raft log (hard state:
 * term and vote) is missing or older than the state machine beside it — so starting would forget
 * this node's vote and serve data the log cannot vouch for. Nothing was changed; the message names
 * the files and how to have the node rebuilt from the leader.
 */
export class DataDirInconsistentError extends Error {
  override name = 'DataDirInconsistentError';
  constructor(
    readonly dataDir: string,
    /** The files or directories that disagree. */
    readonly files: readonly string[],
    readonly detail: string,
  ) {
    super(
      `data dir ${dataDir} is inconsistent: ${detail} (${files.join(', ')}); the node refuses to start rather than forget its vote ` +
        `or serve stale data, and changed nothing. To recover, move ${dataDir} aside (for example: mv ${dataDir} ${dataDir}.broken) ` +
        'and restart this node so it is rebuilt from the leader',
    );
  }
}

/** Another process holds this data dir (its LOCK file names a live process): two nodes on one data dir would corrupt it. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly lockFile: string,
    /** The holder's pid, when the lock file could be read. */
    readonly pid: number | undefined,
    holder: string,
  ) {
    super(
      `data dir ${dataDir} is in use by ${holder} (lock file ${lockFile}); nothing was changed. ` +
        'Stop that process first, or give this node its own dataDir. ' +
        `If no quorumkv node runs on this data dir any more (e.g. its pid was reused), delete ${lockFile} and start again`,
    );
  }
}

/** The data dir was created for another node or cluster (its identity file says so). */
export class DataDirIdentityError extends Error {
  override name = 'DataDirIdentityError';
  constructor(
    readonly dataDir: string,
    readonly identityFile: string,
    readonly found: { cluster: string; nodeId: string },
    readonly expected: { cluster: string; nodeId: string },
  ) {
    super(
      `data dir ${dataDir} belongs to node ${found.nodeId} of cluster "${found.cluster}" (${identityFile}), ` +
        `not to node ${expected.nodeId} of cluster "${expected.cluster}"; nothing was changed — check dataDir in the config ` +
        '(and QUORUMKV_DATA_DIR): every node needs its own data dir',
    );
  }
}
