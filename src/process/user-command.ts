// `quorumkv user add|token|remove|list --config FILE`: edits the users file the config names
// (auth.usersFile). Passwords are hashed with scrypt and tokens with SHA-256 before they are
// written; the plaintext never reaches the file. Nodes pick up the change within a few seconds.
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../api/errors.js';
import { BUILTIN_ROLES, hashPassword, newToken, resolveUsers, type UsersFile } from '../server/auth.js';
import type { ClusterConfig } from './config.js';

async function readUsers(file: string): Promise<UsersFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { users: [], roles: [] };
    throw err;
  }
  const doc = JSON.parse(text) as UsersFile;
  resolveUsers(doc, file); // refuse to edit a file that is already invalid
  return doc;
}

async function writeUsers(file: string, doc: UsersFile): Promise<void> {
  resolveUsers(doc, file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

function usersFileOf(config: ClusterConfig): string {
  if (!config.auth) throw new ConfigError(config.file, 'auth', 'missing: add "auth": { "usersFile": "users.json" } to manage users');
  return config.auth.usersFile;
}

/** Adds (or updates) a user with a password and roles. */
export async function addUser(config: ClusterConfig, name: string, roles: string[], password: string | undefined): Promise<void> {
  const file = usersFileOf(config);
  const doc = await readUsers(file);
  const existing = doc.users.find((u) => u.name === name);
  const user = existing ?? { name, roles: [] };
  user.roles = roles;
  if (password !== undefined) user.password = await hashPassword(password);
  if (!existing) doc.users.push(user);
  await writeUsers(file, doc);
}

/** Issues a new API token for a user; returns the token (shown once, only its hash is stored). */
export async function addToken(config: ClusterConfig, name: string): Promise<string> {
  const file = usersFileOf(config);
  const doc = await readUsers(file);
  const user = doc.users.find((u) => u.name === name);
  if (!user) throw new ConfigError(file, 'users', `no user ${name} (add it first: quorumkv user add ${name} --role ...)`);
  const { token, stored } = newToken();
  user.tokens = [...(user.tokens ?? []), stored];
  await writeUsers(file, doc);
  return token;
}

export async function removeUser(config: ClusterConfig, name: string): Promise<boolean> {
  const file = usersFileOf(config);
  const doc = await readUsers(file);
  const before = doc.users.length;
  doc.users = doc.users.filter((u) => u.name !== name);
  if (doc.users.length === before) return false;
  await writeUsers(file, doc);
  return true;
}

export async function listUsers(config: ClusterConfig): Promise<{ name: string; roles: string[]; password: boolean; tokens: number }[]> {
  const doc = await readUsers(usersFileOf(config));
  return doc.users.map((u) => ({ name: u.name, roles: u.roles, password: u.password !== undefined, tokens: u.tokens?.length ?? 0 }));
}

export const ROLE_HELP = `built-in roles: ${Object.keys(BUILTIN_ROLES).join(', ')}; custom roles with key prefixes go in the file's "roles" list`;
