// TLS material and client authentication of one node, from its config: read once at start, each
// problem reported as a ConfigError naming the config file and the field.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../api/errors.js';
import { Authenticator, UsersFileError } from '../server/auth.js';
import { memberIdFromSubjectAltName, type PeerTls } from '../transport/peer-identity.js';
import type { ClusterConfig, NodeConfig } from './config.js';

function readPem(config: ClusterConfig, field: string, file: string, kind: 'certificate' | 'key'): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new ConfigError(
      config.file,
      field,
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (quorumkv certs --config ${config.file} creates it)`,
    );
  }
  const text = pem.toString('utf8');
  if (kind === 'certificate' && !text.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(config.file, field, `${file} is not a PEM certificate`);
  if (kind === 'key' && !/-----BEGIN (EC |RSA )?PRIVATE KEY-----/.test(text)) throw new ConfigError(config.file, field, `${file} is not a PEM private key`);
  return pem;
}

export interface NodeTls {
  peer: PeerTls;
  /** For the client API: the node's certificate; client certificates required when clientCertAuth. */
  clientServer: grpc.ServerCredentials;
}

/** The node's TLS material, or undefined when the cluster runs plaintext. */
export function nodeTls(config: ClusterConfig, self: NodeConfig): NodeTls | undefined {
  if (!config.tls || !self.tls) return undefined;
  const i = config.nodes.indexOf(self);
  const ca = readPem(config, 'tls.ca', config.tls.ca, 'certificate');
  const cert = readPem(config, `nodes[${i}].tls.cert`, self.tls.cert, 'certificate');
  const key = readPem(config, `nodes[${i}].tls.key`, self.tls.key, 'key');
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(cert);
  } catch (err) {
    throw new ConfigError(config.file, `nodes[${i}].tls.cert`, `${self.tls.cert} does not parse: ${(err as Error).message}`);
  }
  const id = memberIdFromSubjectAltName(parsed.subjectAltName);
  if (id !== self.id) {
    throw new ConfigError(
      config.file,
      `nodes[${i}].tls.cert`,
      `${self.tls.cert} is ${id ? `member ${id}'s certificate` : 'not a member certificate (no URI quorumkv://member/<id>)'}, not ${self.id}'s`,
    );
  }
  if (!parsed.checkIssued(new X509Certificate(ca))) {
    throw new ConfigError(config.file, `nodes[${i}].tls.cert`, `${self.tls.cert} was not issued by the CA in ${config.tls.ca}`);
  }
  if (Date.parse(parsed.validTo) < Date.now()) throw new ConfigError(config.file, `nodes[${i}].tls.cert`, `${self.tls.cert} expired on ${parsed.validTo}`);
  const clientCertAuth = config.tls.clientCertAuth;
  return {
    peer: { ca, cert, key },
    clientServer: grpc.ServerCredentials.createSsl(clientCertAuth ? ca : null, [{ private_key: key, cert_chain: cert }], clientCertAuth),
  };
}

/** The node's client authenticator, or undefined when auth is off. */
export function nodeAuthenticator(config: ClusterConfig, logger?: ConstructorParameters<typeof Authenticator>[0]['logger']): Authenticator | undefined {
  if (!config.auth) return undefined;
  try {
    return new Authenticator({ usersFile: config.auth.usersFile, clientCertAuth: config.tls?.clientCertAuth ?? false, logger });
  } catch (err) {
    if (err instanceof UsersFileError) throw new ConfigError(config.file, 'auth.usersFile', err.message);
    throw err;
  }
}

/**
 * What the launcher (and other operator tools) dial the client API with: plaintext, or TLS with the
 * cluster CA, presenting the first node's certificate where clients must have one (Status, which
 * the launcher polls, needs no user).
 */
export function probeCredentials(config: ClusterConfig): grpc.ChannelCredentials {
  if (!config.tls) return grpc.credentials.createInsecure();
  const ca = readPem(config, 'tls.ca', config.tls.ca, 'certificate');
  const first = config.nodes.find((n) => n.tls);
  if (config.tls.clientCertAuth && first?.tls) {
    const i = config.nodes.indexOf(first);
    return grpc.credentials.createSsl(
      ca,
      readPem(config, `nodes[${i}].tls.key`, first.tls.key, 'key'),
      readPem(config, `nodes[${i}].tls.cert`, first.tls.cert, 'certificate'),
    );
  }
  return grpc.credentials.createSsl(ca);
}
