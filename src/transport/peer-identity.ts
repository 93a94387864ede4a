// Peer identity on mutual-TLS links: a node's certificate names its member id in a URI subject
// alternative name, quorumkv://member/<id> (what `quorumkv certs` issues). The receiver of a Raft
// stream takes the sender's id from the certificate the TLS handshake verified; the dialer checks
// that the node it reached holds the certificate of the member it meant to reach.
import type { PeerCertificate } from 'node:tls';

export const MEMBER_URI_PREFIX = 'quorumkv://member/';

const MEMBER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The member id in a `subjectaltname` string ("URI:quorumkv://member/n1, IP Address:127.0.0.1"). */
export function memberIdFromSubjectAltName(san: string | undefined): string | undefined {
  if (!san) return undefined;
  let found: string | undefined;
  for (const part of san.split(/,\s*/)) {
    if (!part.startsWith(`URI:${MEMBER_URI_PREFIX}`)) continue;
    const id = part.slice(`URI:${MEMBER_URI_PREFIX}`.length);
    if (!MEMBER_ID.test(id)) return undefined;
    // Two different member ids in one certificate would make the identity ambiguous: none then.
    if (found !== undefined && found !== id) return undefined;
    found = id;
  }
  return found;
}

/** The member id a verified peer certificate names, or undefined when it names none. */
export function memberIdOf(cert: PeerCertificate | undefined | null): string | undefined {
  return memberIdFromSubjectAltName(cert?.subjectaltname);
}

/** Key material of one node for mutual TLS on peer links (PEM). */
export interface PeerTls {
  /** The cluster CA that signs every member's certificate. */
  ca: Buffer;
  /** This node's certificate (with its quorumkv://member/<id> SAN) and private key. */
  cert: Buffer;
  key: Buffer;
}
