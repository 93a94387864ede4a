// Errors of the transport layer. Network failures are never thrown from send(): Raft tolerates
// loss, so they surface as onUnreachable / onSnapshotStatus events and as stats() counters.

/** Bytes from a peer that do not decode to well-formed Raft messages; the whole batch is dropped. */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError';
  constructor(
    /** Where in the decoded value the problem is, e.g. `[0].entries[3].data`. */
    readonly path: string,
    readonly reason: string,
  ) {
    super(`malformed raft message at ${path || '<root>'}: ${reason}; the batch was dropped (peer running an incompatible version?)`);
  }
}

/** A transport option is invalid; nothing was started or changed. */
export class TransportConfigError extends Error {
  override name = 'TransportConfigError';
  constructor(
    readonly field: string,
    readonly value: unknown,
    detail: string,
  ) {
    super(`invalid transport option ${field} = ${JSON.stringify(value)}: ${detail}`);
  }
}

/** start() was called on a transport that is closing or closed; create a new transport instead. */
export class TransportClosedError extends Error {
  override name = 'TransportClosedError';
  constructor(readonly selfId: string) {
    super(`transport of node ${selfId} is closed; create a new transport to listen again`);
  }
}
