// Command-line parsing (node:util parseArgs): one option table for all commands, then a check
// that each command got only the options it understands.
import { parseArgs } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

const OPTIONS = {
  endpoints: { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  async: { type: 'boolean' },
  consistency: { type: 'string' },
  'min-index': { type: 'string' },
  'max-lag-ms': { type: 'string' },
  limit: { type: 'string' },
  node: { type: 'string' },
  'raft-address': { type: 'string' },
  'client-address': { type: 'string' },
  learner: { type: 'boolean' },
  user: { type: 'string' },
  token: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  role: { type: 'string' },
  client: { type: 'string' },
} as const;

type OptionName = keyof typeof OPTIONS;

export interface ParsedArgs {
  command: string;
  positionals: string[];
  values: { [K in OptionName]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };
}

const GLOBAL: readonly OptionName[] = ['endpoints', 'config', 'json', 'timeout', 'help', 'version', 'user', 'token', 'cacert', 'cert', 'key'];

/** Per command: its positional arguments and the options it accepts beyond the global ones. */
export const COMMANDS: Record<string, { args: string[]; options: OptionName[]; about: string }> = {
  put: { args: ['KEY', 'VALUE'], options: ['async'], about: 'write KEY = VALUE (--async: ack once in the leader log)' },
  get: {
    args: ['KEY'],
    options: ['consistency', 'min-index', 'max-lag-ms'],
    about: 'read KEY (--consistency linearizable|lease|follower); exit 1 if absent',
  },
  del: { args: ['KEY'], options: ['async'], about: 'delete KEY' },
  scan: {
    args: ['PREFIX'],
    options: ['limit', 'consistency', 'min-index', 'max-lag-ms'],
    about: 'list keys starting with PREFIX ("" = all) (--limit N)',
  },
  status: { args: [], options: [], about: 'one row per node: id, address, role, term, commit, applied, lag' },
  'transfer-leader': { args: ['NODE_ID'], options: [], about: 'hand leadership to NODE_ID (planned switchover)' },
  'member add': {
    args: ['ID'],
    options: ['raft-address', 'client-address', 'learner'],
    about: 'add node ID (started with "join": true): --raft-address A --client-address B [--learner]',
  },
  'member promote': { args: ['ID'], options: [], about: 'make learner ID a voter' },
  'member remove': { args: ['ID'], options: [], about: 'remove node ID (transfer leadership away first if it leads)' },
  'member list': { args: [], options: [], about: 'members as the leader sees them: id, role, client address' },
  serve: { args: [], options: ['node'], about: 'run one node: serve --config FILE --node ID' },
  cluster: { args: [], options: [], about: 'run every node of --config FILE on this machine' },
  rebuild: {
    args: [],
    options: ['node'],
    about: 'rebuild a damaged node from the leader: stop it, rebuild --config FILE --node ID (moves its data dir aside), start it',
  },
  certs: { args: [], options: ['client'], about: 'create the local CA and the node certificates a TLS config names (--client a,b: client certificates too)' },
  'user add': {
    args: ['NAME'],
    options: ['role'],
    about: 'add or update user NAME: --role admin|readwrite|readonly|<custom>[,...]; password from QUORUMKV_PASSWORD or stdin',
  },
  'user token': { args: ['NAME'], options: [], about: 'issue an API token for user NAME (printed once; only its hash is stored)' },
  'user remove': { args: ['NAME'], options: [], about: 'remove user NAME' },
  'user list': { args: [], options: [], about: 'users, their roles, and whether they have a password or tokens' },
  help: { args: [], options: [], about: 'show this help' },
  version: { args: [], options: [], about: 'print the quorumkv version (also --version)' },
};

export function usage(): string {
  const lines = [
    'usage: quorumkv <command> [args] [--endpoints host:port,... | --config FILE] [--json] [--timeout MS]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${[name, ...c.args].join(' ').padEnd(28)} ${c.about}`),
    '',
    'options:',
    '  --endpoints a,b,c   client addresses of the nodes (or QUORUMKV_ENDPOINTS)',
    '  --config FILE       take the endpoints from a cluster config file',
    '  --json              machine-readable output on stdout',
    '  --timeout MS        deadline per request, retries included (default 5000)',
    '  --user NAME[:PASS]  authenticate as NAME (password from QUORUMKV_PASSWORD when not given)',
    '  --token TOKEN       authenticate with an API token (or QUORUMKV_TOKEN)',
    '  --cacert FILE       CA to verify the nodes with (default: tls.ca of --config)',
    '  --cert FILE --key FILE  client certificate and key (TLS client authentication)',
    '  --version, -v       print the version',
    '',
    'exit codes: 0 ok, 1 not found, 2 usage or invalid request, 3 cluster unavailable, 4 other failure',
  ];
  return lines.join('\n');
}

export function parseCli(argv: string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const values = parsed.values as ParsedArgs['values'];
  if (values.version && parsed.positionals.length === 0) return { command: 'version', positionals: [], values };
  let [command = values.help ? 'help' : '', ...positionals] = parsed.positionals;
  if (!command) throw new UsageError('no command given');
  // Command groups (`member add ...`): the group and its subcommand name one command.
  if ((command === 'member' || command === 'user') && values.help) return { command: 'help', positionals, values };
  if (command === 'member' || command === 'user') {
    const group = command;
    const subcommands = Object.keys(COMMANDS)
      .filter((c) => c.startsWith(`${group} `))
      .map((c) => c.slice(group.length + 1));
    const sub = positionals.shift();
    if (sub === undefined) throw new UsageError(`${group} needs a subcommand: ${subcommands.join(', ')}`);
    if (!subcommands.includes(sub)) throw new UsageError(`unknown ${group} subcommand "${sub}" (expected one of ${subcommands.join(', ')})`);
    command = `${group} ${sub}`;
  }
  const spec = COMMANDS[command];
  if (!spec) throw new UsageError(`unknown command "${command}"`);
  for (const name of Object.keys(values) as OptionName[]) {
    if (!GLOBAL.includes(name) && !spec.options.includes(name)) throw new UsageError(`${command} does not take --${name}`);
  }
  if (command !== 'help' && !values.help && positionals.length !== spec.args.length) {
    throw new UsageError(`${command} takes ${spec.args.length ? spec.args.join(' ') : 'no arguments'}, got ${positionals.length} argument(s)`);
  }
  return { command: values.help ? 'help' : command, positionals, values };
}

/** A non-negative integer option, or undefined when absent. */
export function intOption(values: ParsedArgs['values'], name: 'timeout' | 'limit' | 'min-index' | 'max-lag-ms', min = 0): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}
