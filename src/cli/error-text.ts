// Errors in quorumkv's own words: the CLI never prints gRPC's connection diagnostics ("No connection
// established. Last error: ... Resolution note"), and a read that timed out does not talk about writes.
import { ClusterUnavailableError, DeadlineExceededError, RequestCancelledError } from '../api/errors.js';

/** Why one endpoint could not be reached, as a short phrase ("connection refused", ...). */
export function reachFailure(err: unknown): string {
  const text = chainText(err);
  if (/ECONNREFUSED/.test(text)) return 'connection refused (is the node running on this address?)';
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo|DNS resolution failed/i.test(text)) return 'host name not found';
  if (/EHOSTUNREACH|ENETUNREACH/.test(text)) return 'host unreachable';
  if (/ECONNRESET|EPIPE/.test(text)) return 'connection reset by the node';
  if (/certificate|SSL|TLS|handshake/i.test(text)) return 'TLS handshake failed (check --cacert, --cert and --key)';
  if (err instanceof DeadlineExceededError) return `no answer within ${err.deadlineMs} ms`;
  if (/deadline|timed? ?out/i.test(text)) return 'no answer in time';
  return firstClause(err instanceof Error ? err.message : String(err));
}

function chainText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    parts.push(e instanceof Error ? `${e.message} ${(e as NodeJS.ErrnoException).code ?? ''}` : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(' ');
}

/** The message without gRPC's appended diagnostics, on one line. */
function firstClause(message: string): string {
  return message
    .replace(/\s*Resolution note:.*$/s, '')
    .replace(/\s*No connection established\.?\s*Last error:\s*/i, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** One line for the operator: what failed, in quorumkv's words. `writes` = the command changes data. */
export function describeError(err: unknown, writes: boolean): string {
  if (err instanceof ClusterUnavailableError) {
    const why = err.lastError ? `: ${reachFailure(err.lastError)}` : '';
    return `no quorumkv node answered within ${err.deadlineMs} ms (endpoints: ${err.endpoints.join(', ')})${why}; check that the cluster is running and the endpoints are right`;
  }
  if (err instanceof DeadlineExceededError) {
    return writes
      ? `the write did not complete within ${err.deadlineMs} ms; it may still be applied: read the key before writing it again (or raise --timeout)`
      : `no answer within ${err.deadlineMs} ms; the cluster may be electing a leader or overloaded: retry, or raise --timeout`;
  }
  if (err instanceof RequestCancelledError) return writes ? 'the write was cancelled; it may still be applied' : 'the request was cancelled';
  return firstClause(err instanceof Error ? err.message : String(err));
}
