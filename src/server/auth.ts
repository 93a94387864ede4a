// Client authentication and authorization, modelled on etcd's: users with roles, roles with
// permissions on key prefixes, three built-in roles (readonly, readwrite, admin).
//
// Where users live: a JSON users file that the cluster config names (`auth.usersFile`), the same
// file on every node (`quorumkv user add` writes it; nodes pick up changes within a few seconds).
// Passwords are stored as scrypt hashes (node:crypto), tokens as SHA-256 hashes (they are 256-bit
// random secrets, so a fast hash is as strong as a slow one). Nothing is stored in plaintext.
//
// How a client proves who it is, in this order:
//   1. metadata `authorization: Bearer <token>`,
//   2. metadata `authorization: Basic base64(user:password)` (scrypt runs off the event loop, at
//      most a few at a time, and a verified password is remembered for a few minutes, so a busy
//      client does not pay scrypt per request),
//   3. a client certificate of the cluster CA (with `tls.clientCertAuth`): its CN is the user.
// Credentials that are present but wrong are refused even when a certificate would do.
//
// Ping and Status need no credentials (like Consul's /v1/status endpoints): they reveal only
// liveness and topology, and load balancers, the cluster launcher and the SDK's leader discovery
// use them. Everything else does.
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { PeerCertificate } from 'node:tls';
import type { Metadata } from '@grpc/grpc-js';
import { prefixEnd } from '../api/command.js';
import { OverloadedError, PermissionDeniedError, UnauthenticatedError } from '../api/errors.js';
import type { KvMethodName } from '../api/kv-proto.js';

export type Access = 'read' | 'readwrite';

export interface Permission {
  access: Access;
  /** Key prefix the permission covers; '' = every key. */
  prefix: Uint8Array;
}

export interface Role {
  name: string;
  /** Membership, leadership transfer, and every key. */
  admin: boolean;
  permissions: Permission[];
}

/** Who is calling, once authenticated. */
export interface Principal {
  user: string;
  admin: boolean;
  /** [start, end) ranges this user may read / write ('' end = to the end of the keyspace). */
  read: KeyRange[];
  write: KeyRange[];
}

export interface KeyRange {
  start: Uint8Array;
  end: Uint8Array;
}

export const BUILTIN_ROLES: Readonly<Record<string, Role>> = Object.freeze({
  admin: { name: 'admin', admin: true, permissions: [{ access: 'readwrite', prefix: new Uint8Array(0) }] },
  readwrite: { name: 'readwrite', admin: false, permissions: [{ access: 'readwrite', prefix: new Uint8Array(0) }] },
  readonly: { name: 'readonly', admin: false, permissions: [{ access: 'read', prefix: new Uint8Array(0) }] },
});

/** Methods anyone may call, authenticated or not. */
export const PUBLIC_METHODS: ReadonlySet<KvMethodName> = new Set<KvMethodName>(['Ping', 'Status']);
/** Methods only an admin may call. */
export const ADMIN_METHODS: ReadonlySet<KvMethodName> = new Set<KvMethodName>(['TransferLeadership', 'AddMember', 'RemoveMember']);

// ---- hashing ----------------------------------------------------------------------------------

const SCRYPT = { N: 2 ** 15, r: 8, p: 1, keyLen: 32 };
const SCRYPT_MAXMEM = 128 * SCRYPT.N * SCRYPT.r * 2;

function scrypt(password: string, salt: Buffer, keyLen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keyLen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (salt and hash base64): what the users file stores for a password. */
export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== 'string' || password.length === 0) throw new Error('the password must not be empty');
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keyLen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: SCRYPT_MAXMEM });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface ScryptHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseScryptHash(s: string): ScryptHash | undefined {
  const parts = s.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![N, r, p].every((n) => Number.isSafeInteger(n) && n > 0) || N > 2 ** 20 || r > 32 || p > 16) return undefined;
  const salt = Buffer.from(parts[4]!, 'base64');
  const key = Buffer.from(parts[5]!, 'base64');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { N, r, p, salt, key };
}

async function verifyScrypt(password: string, h: ScryptHash): Promise<boolean> {
  const key = await scrypt(password, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: 128 * h.N * h.r * 2 });
  return timingSafeEqual(key, h.key);
}

/** A new random API token (what the user keeps) and its stored form `sha256$<hex>`. */
export function newToken(): { token: string; stored: string } {
  const token = `qkv_${randomBytes(32).toString('base64url')}`;
  return { token, stored: hashToken(token) };
}

export function hashToken(token: string): string {
  return `sha256$${createHash('sha256').update(token).digest('hex')}`;
}

// ---- the users file ---------------------------------------------------------------------------

export interface UserRecord {
  name: string;
  /** scrypt hash; absent = no password login (token or certificate only). */
  password?: string;
  /** sha256 hashes of the user's API tokens. */
  tokens?: string[];
  roles: string[];
}

export interface RoleRecord {
  name: string;
  /** Admin rights (membership, leadership transfer) in addition to the permissions. */
  admin?: boolean;
  permissions: { access: Access; prefix: string }[];
}

export interface UsersFile {
  users: UserRecord[];
  roles?: RoleRecord[];
}

/** A users file that is unreadable or invalid: names the file and the field. */
export class UsersFileError extends Error {
  override name = 'UsersFileError';
  constructor(
    readonly file: string,
    readonly field: string,
    detail: string,
  ) {
    super(`${file}: ${field}: ${detail}`);
  }
}

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;

interface ResolvedUser {
  name: string;
  password?: ScryptHash;
  tokens: Set<string>;
  principal: Principal;
}

/** Validates a parsed users file and resolves every user's roles into key ranges. */
export function resolveUsers(doc: unknown, file: string): Map<string, ResolvedUser> {
  const fail = (field: string, detail: string): never => {
    throw new UsersFileError(file, field, detail);
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('(root)', 'must be an object with "users" (and optional "roles")');
  const d = doc as Partial<UsersFile>;
  for (const k of Object.keys(d)) if (k !== 'users' && k !== 'roles') fail(k, 'unknown field (expected users, roles)');
  if (!Array.isArray(d.users)) fail('users', 'must be a list');
  const roles = new Map<string, Role>(Object.entries(BUILTIN_ROLES));
  (d.roles ?? []).forEach((r, i) => {
    const f = `roles[${i}]`;
    if (typeof r?.name !== 'string' || !USER_NAME.test(r.name)) fail(`${f}.name`, 'must be a role name (letters, digits, . _ @ -)');
    if (roles.has(r.name)) fail(`${f}.name`, `duplicate role ${r.name}${r.name in BUILTIN_ROLES ? ' (a built-in role)' : ''}`);
    if (!Array.isArray(r.permissions)) fail(`${f}.permissions`, 'must be a list of { access: "read" | "readwrite", prefix }');
    const permissions = r.permissions.map((p, j): Permission => {
      if (p?.access !== 'read' && p?.access !== 'readwrite') fail(`${f}.permissions[${j}].access`, 'must be "read" or "readwrite"');
      if (typeof p.prefix !== 'string') fail(`${f}.permissions[${j}].prefix`, 'must be a string ("" = every key)');
      return { access: p.access, prefix: Buffer.from(p.prefix) };
    });
    roles.set(r.name, { name: r.name, admin: r.admin === true, permissions });
  });
  const users = new Map<string, ResolvedUser>();
  d.users!.forEach((u, i) => {
    const f = `users[${i}]`;
    if (typeof u?.name !== 'string' || !USER_NAME.test(u.name)) fail(`${f}.name`, 'must be a user name (letters, digits, . _ @ -)');
    if (users.has(u.name)) fail(`${f}.name`, `duplicate user ${u.name}`);
    let password: ScryptHash | undefined;
    if (u.password !== undefined) {
      password = typeof u.password === 'string' ? parseScryptHash(u.password) : undefined;
      if (!password) fail(`${f}.password`, 'must be an scrypt hash (scrypt$N$r$p$salt$hash, as `quorumkv user add` writes it), never a plaintext password');
    }
    const tokens = new Set<string>();
    for (const [j, t] of (u.tokens ?? []).entries()) {
      if (typeof t !== 'string' || !/^sha256\$[0-9a-f]{64}$/.test(t)) fail(`${f}.tokens[${j}]`, 'must be a token hash (sha256$<hex>), never the token itself');
      tokens.add(t);
    }
    if (!Array.isArray(u.roles)) fail(`${f}.roles`, `must be a list of role names (built in: ${Object.keys(BUILTIN_ROLES).join(', ')})`);
    const read: KeyRange[] = [];
    const write: KeyRange[] = [];
    let admin = false;
    for (const [j, name] of u.roles.entries()) {
      const role = roles.get(name);
      if (!role) {
        fail(`${f}.roles[${j}]`, `unknown role ${JSON.stringify(name)} (roles: ${[...roles.keys()].join(', ')})`);
        continue;
      }
      admin ||= role.admin;
      for (const p of role.permissions) {
        const range = { start: p.prefix, end: p.prefix.length === 0 ? new Uint8Array(0) : prefixEnd(p.prefix) };
        read.push(range);
        if (p.access === 'readwrite') write.push(range);
      }
    }
    const resolved: ResolvedUser = { name: u.name, tokens, principal: { user: u.name, admin, read, write } };
    if (password) resolved.password = password;
    users.set(u.name, resolved);
  });
  return users;
}

export function loadUsersFile(file: string): Map<string, ResolvedUser> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsersFileError(file, '(file)', `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsersFileError(file, '(file)', `not valid JSON: ${(err as Error).message}`);
  }
  return resolveUsers(doc, file);
}

// ---- authentication ---------------------------------------------------------------------------

export interface AuthenticatorOptions {
  usersFile: string;
  /** Trust the CN of a verified client certificate as the user name. */
  clientCertAuth: boolean;
  /** How long a verified password is remembered (default 5 min). */
  passwordCacheMs?: number;
  /** scrypt verifications running at once (default 4); beyond it: RESOURCE_EXHAUSTED. */
  maxConcurrentVerifications?: number;
  /** How often the users file is checked for changes (default 2000 ms; 0 = never). */
  reloadEveryMs?: number;
  logger?: { warn(fields: Record<string, unknown>, message: string): void; info(fields: Record<string, unknown>, message: string): void };
}

const MAX_CACHED_PASSWORDS = 10_000;

export class Authenticator {
  private users: Map<string, ResolvedUser>;
  private byToken = new Map<string, ResolvedUser>();
  private readonly verified = new Map<string, { user: string; until: number }>();
  private verifying = 0;
  private mtimeMs = 0;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: AuthenticatorOptions) {
    this.users = loadUsersFile(options.usersFile);
    this.index();
    this.mtimeMs = this.statMtime();
    const every = options.reloadEveryMs ?? 2000;
    if (every > 0) {
      this.timer = setInterval(() => this.maybeReload(), every);
      this.timer.unref();
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get userCount(): number {
    return this.users.size;
  }

  /**
   * The caller's principal, undefined when it presented no credentials at all. Throws
   * UnauthenticatedError for credentials that do not check out.
   */
  async authenticate(metadata: Metadata, certificate: PeerCertificate | undefined): Promise<Principal | undefined> {
    const header = metadata.get('authorization')[0];
    if (header !== undefined) {
      const value = typeof header === 'string' ? header : header.toString('utf8');
      if (value.length > 4096) throw new UnauthenticatedError('the authorization header is too long');
      if (value.startsWith('Bearer ')) return this.byTokenValue(value.slice('Bearer '.length).trim());
      if (value.startsWith('Basic ')) return this.byPassword(value.slice('Basic '.length).trim());
      throw new UnauthenticatedError('the authorization header must be "Bearer <token>" or "Basic <base64 user:password>"');
    }
    if (certificate && this.options.clientCertAuth) {
      const cn = certificate.subject?.CN;
      const name = Array.isArray(cn) ? undefined : cn;
      const user = name ? this.users.get(name) : undefined;
      if (!user) throw new UnauthenticatedError(`the client certificate's CN ${JSON.stringify(name ?? '')} is not a user of this cluster`);
      return user.principal;
    }
    return undefined;
  }

  private byTokenValue(token: string): Principal {
    const user = this.byToken.get(hashToken(token));
    if (!user) throw new UnauthenticatedError('unknown or revoked token');
    return user.principal;
  }

  private async byPassword(encoded: string): Promise<Principal> {
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new UnauthenticatedError('Basic credentials must be base64("user:password")');
    const name = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const user = this.users.get(name);
    const cacheKey = createHash('sha256').update(decoded).digest('base64');
    const cached = this.verified.get(cacheKey);
    if (cached && cached.until > Date.now() && user && cached.user === user.name) return user.principal;
    if (!user?.password) throw new UnauthenticatedError('wrong user name or password');
    if (this.verifying >= (this.options.maxConcurrentVerifications ?? 4))
      throw new OverloadedError('password verifications', this.options.maxConcurrentVerifications ?? 4);
    this.verifying++;
    let ok: boolean;
    try {
      ok = await verifyScrypt(password, user.password);
    } finally {
      this.verifying--;
    }
    if (!ok) throw new UnauthenticatedError('wrong user name or password');
    if (this.verified.size >= MAX_CACHED_PASSWORDS) this.verified.clear();
    this.verified.set(cacheKey, { user: user.name, until: Date.now() + (this.options.passwordCacheMs ?? 300_000) });
    return user.principal;
  }

  private index(): void {
    const byToken = new Map<string, ResolvedUser>();
    for (const u of this.users.values()) for (const t of u.tokens) byToken.set(t, u);
    this.byToken = byToken;
    // A changed file may have changed or removed passwords: verify them again.
    this.verified.clear();
  }

  private statMtime(): number {
    try {
      return statSync(this.options.usersFile).mtimeMs;
    } catch {
      return 0;
    }
  }

  /** Re-reads the users file when it changed; a broken file keeps the previous users (and says so). */
  maybeReload(): void {
    const mtime = this.statMtime();
    if (mtime === this.mtimeMs) return;
    this.mtimeMs = mtime;
    try {
      this.users = loadUsersFile(this.options.usersFile);
      this.index();
      this.options.logger?.info({ event: 'users_reloaded', file: this.options.usersFile, users: this.users.size }, 'users file reloaded');
    } catch (err) {
      this.options.logger?.warn({ event: 'users_reload_failed', err: (err as Error).message }, 'users file changed but is invalid; keeping the previous users');
    }
  }
}

// ---- authorization ----------------------------------------------------------------------------

function cmp(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Whether the ranges together cover [start, end) (end '' = to the end of the keyspace). */
export function covers(ranges: readonly KeyRange[], start: Uint8Array, end: Uint8Array): boolean {
  // Walk from `start`, each time jumping to the furthest end of a range that contains the point.
  let at = start;
  for (let guard = 0; guard <= ranges.length; guard++) {
    let furthest: Uint8Array | undefined;
    let unbounded = false;
    for (const r of ranges) {
      if (cmp(r.start, at) > 0) continue;
      if (r.end.length === 0) {
        unbounded = true;
        break;
      }
      if (cmp(r.end, at) > 0 && (!furthest || cmp(r.end, furthest) > 0)) furthest = r.end;
    }
    if (unbounded) return true;
    if (!furthest) return false;
    if (end.length > 0 && cmp(furthest, end) >= 0) return true;
    at = furthest;
  }
  return false;
}

function keyText(key: Uint8Array): string {
  const s = Buffer.from(key).toString('utf8');
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

export function requireAdmin(p: Principal, method: string): void {
  if (!p.admin) throw new PermissionDeniedError(p.user, `call ${method} (admin only)`);
}

export function requireKey(p: Principal, access: 'read' | 'write', key: Uint8Array): void {
  const ranges = access === 'read' ? p.read : p.write;
  const end = Buffer.concat([key, Buffer.of(0)]); // [key, key\0) = exactly this key
  if (!covers(ranges, key, end)) throw new PermissionDeniedError(p.user, `${access} key ${keyText(key)}`);
}

export function requireRange(p: Principal, access: 'read' | 'write', start: Uint8Array, end: Uint8Array): void {
  const ranges = access === 'read' ? p.read : p.write;
  if (!covers(ranges, start, end)) {
    throw new PermissionDeniedError(p.user, `${access} the range [${keyText(start)}, ${end.length ? keyText(end) : 'end of keyspace'})`);
  }
}

/** WaitFor settles a write's receipt: any user who may write somewhere may ask. */
export function requireSomeWrite(p: Principal): void {
  if (p.write.length === 0) throw new PermissionDeniedError(p.user, 'wait for a write receipt (no write permission)');
}

/** For Basic credentials on the wire. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
