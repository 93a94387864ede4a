// `quorumkv certs --config FILE [--client NAMES]`: a local CA and the certificates a TLS config
// names, made with @peculiar/x509 on node's WebCrypto (ECDSA P-256, SHA-256).
//   - the CA (tls.ca, its key beside it as <name>.key): made once, reused afterwards;
//   - one certificate per node (nodes[].tls.cert/key) naming the member in a URI SAN
//     quorumkv://member/<id> (what peers verify) plus localhost, 127.0.0.1, ::1 and the hosts of
//     its addresses (what clients verify), for both server and client use;
//   - client certificates (CN = user name, client use only) for --client a,b.
// Existing files are kept, never overwritten: delete one to have it made again. Keys are written
// with mode 0600.
import 'reflect-metadata';
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { ConfigError } from '../api/errors.js';
import { MEMBER_URI_PREFIX } from '../transport/peer-identity.js';
import type { ClusterConfig } from './config.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface CertsResult {
  created: string[];
  kept: string[];
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^[89a-f]/, '1');
}

async function pemKey(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

async function importKey(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  return (await webcrypto.subtle.importKey('pkcs8', Buffer.from(b64, 'base64'), ALG, false, ['sign'])) as unknown as CryptoKey;
}

function host(address: string): string {
  const h = address.slice(0, address.lastIndexOf(':'));
  return h.startsWith('[') ? h.slice(1, -1) : h;
}

function caKeyPath(caFile: string): string {
  return caFile.replace(/(\.crt|\.pem)?$/, '.key');
}

interface Ca {
  cert: x509.X509Certificate;
  key: CryptoKey;
}

async function loadOrCreateCa(config: ClusterConfig, result: CertsResult): Promise<Ca> {
  const caFile = config.tls!.ca;
  const keyFile = caKeyPath(caFile);
  if (await exists(caFile)) {
    if (!(await exists(keyFile))) {
      throw new ConfigError(config.file, 'tls.ca', `${caFile} exists but its key ${keyFile} does not: cannot sign new certificates with it`);
    }
    result.kept.push(caFile);
    return { cert: new x509.X509Certificate(await readFile(caFile, 'utf8')), key: await importKey(await readFile(keyFile, 'utf8')) };
  }
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=quorumkv CA ${config.cluster}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 3650 * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  await mkdir(path.dirname(caFile), { recursive: true });
  await writeFile(keyFile, await pemKey(keys.privateKey), { mode: 0o600 });
  await writeFile(caFile, `${cert.toString('pem')}\n`);
  result.created.push(caFile, keyFile);
  return { cert, key: keys.privateKey };
}

async function issue(
  ca: Ca,
  subject: string,
  sans: x509.JsonGeneralName[],
  usages: string[],
  certFile: string,
  keyFile: string,
  result: CertsResult,
): Promise<void> {
  if ((await exists(certFile)) && (await exists(keyFile))) {
    result.kept.push(certFile);
    return;
  }
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages, false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert, false),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions,
  });
  await mkdir(path.dirname(certFile), { recursive: true });
  await writeFile(keyFile, await pemKey(keys.privateKey), { mode: 0o600 });
  await writeFile(certFile, `${cert.toString('pem')}\n`);
  result.created.push(certFile, keyFile);
}

/** Creates whatever of the CA, node and client certificates a TLS config names and lacks. */
export async function createCerts(config: ClusterConfig, clients: string[] = []): Promise<CertsResult> {
  if (!config.tls) throw new ConfigError(config.file, 'tls', 'missing: add "tls": { "ca": "certs/ca.crt" } and nodes[].tls (see cluster.tls.example.json)');
  const result: CertsResult = { created: [], kept: [] };
  const ca = await loadOrCreateCa(config, result);
  for (const n of config.nodes) {
    const names = new Set(['localhost', '127.0.0.1', '::1', ...[n.raftAddress, n.clientAddress, ...(n.httpAddress ? [n.httpAddress] : [])].map(host)]);
    const sans: x509.JsonGeneralName[] = [{ type: 'url', value: `${MEMBER_URI_PREFIX}${n.id}` }];
    for (const h of names) if (h && h !== '0.0.0.0' && h !== '::') sans.push(isIP(h) ? { type: 'ip', value: h } : { type: 'dns', value: h });
    await issue(ca, `CN=${n.id}`, sans, [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], n.tls!.cert, n.tls!.key, result);
  }
  const dir = path.dirname(config.tls.ca);
  for (const name of clients) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/.test(name)) throw new ConfigError(config.file, '--client', `${JSON.stringify(name)} is not a user name`);
    await issue(ca, `CN=${name}`, [], [x509.ExtendedKeyUsage.clientAuth], path.join(dir, `client-${name}.crt`), path.join(dir, `client-${name}.key`), result);
  }
  // Sanity check with node's own X.509 parser: every node certificate verifies against the CA.
  const caPem = await readFile(config.tls.ca, 'utf8');
  const caNode = new NodeX509(caPem);
  for (const n of config.nodes) {
    const c = new NodeX509(await readFile(n.tls!.cert, 'utf8'));
    if (!c.checkIssued(caNode) || !c.verify(caNode.publicKey))
      throw new ConfigError(config.file, 'tls.ca', `${n.tls!.cert} was not issued by ${config.tls.ca}: delete it to have it made again`);
  }
  return result;
}
