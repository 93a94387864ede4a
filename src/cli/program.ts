// The command tree on commander: per-command help, --version, typo suggestions. Parsing only
// selects a command and its arguments; run.ts runs it and maps the outcome to an exit code.
import { Command, InvalidArgumentError, Option } from 'commander';
import { type CliValues, type ParsedArgs, wholeNumber } from './args.js';
import { exitCodeTable } from './exit-codes.js';
import { packageVersion } from './version.js';

/** Wraps a parser so commander reports its message as an invalid option value. */
function checked<T>(parse: (raw: string) => T): (raw: string) => T {
  return (raw) => {
    try {
      return parse(raw);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

const CONSISTENCY = ['linearizable', 'lease', 'follower', 'session'];
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function readOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--consistency <mode>', 'read consistency').choices(CONSISTENCY).default(undefined, 'linearizable'))
    .option('--min-index <n>', 'follower reads: wait until the node applied this index', checked(wholeNumber('--min-index', 0)))
    .option('--max-lag-ms <ms>', 'follower reads: refuse when the node may be more than this far behind', checked(wholeNumber('--max-lag-ms', 0)));
}

function logOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--log-format <format>', 'log records as pino JSON or as human lines (default: pretty on a terminal, else json)').choices(['json', 'pretty']),
    )
    .addOption(new Option('--log-level <level>', 'lowest level logged (default: logLevel of the config, else info)').choices(LOG_LEVELS));
}

/**
 * Builds the program. `select` is called with the chosen command; the caller runs it after
 * parsing returns, so parsing stays synchronous and side-effect free.
 */
export function buildProgram(select: (parsed: ParsedArgs) => void, write: { out: (s: string) => void; err: (s: string) => void }): Command {
  const program = new Command('quorumkv');
  const pick =
    (name: string) =>
    (...args: unknown[]): void => {
      const cmd = args[args.length - 1] as Command;
      const positionals = args.slice(0, -2).filter((a): a is string => typeof a === 'string');
      const values = cmd.optsWithGlobals() as CliValues;
      if (values.writeOut === 'json') values.json = true;
      select({ command: name, positionals, values });
    };

  program
    .description('quorumkv: a Raft-replicated key-value store. Client commands talk to a running cluster; serve and cluster run nodes.')
    .version(packageVersion(), '-v, --version', 'print the quorumkv version')
    .helpOption('-h, --help', 'show help (also: quorumkv help COMMAND, quorumkv COMMAND --help)')
    .option('--endpoints <list>', 'client addresses of the nodes, host:port,... (or QUORUMKV_ENDPOINTS)')
    .option('--config <file>', 'a cluster config file (endpoints and TLS CA for clients; the nodes for serve/cluster)')
    .addOption(new Option('-w, --write-out <format>', 'output format').choices(['table', 'json']))
    .option('--json', 'same as -w json: one JSON document on stdout')
    .option('--timeout <ms>', 'deadline per request in ms, retries included (default 5000)', checked(wholeNumber('--timeout', 1)))
    .option('--user <name[:password]>', 'authenticate as NAME (password from QUORUMKV_PASSWORD when not given)')
    .option('--token <token>', 'authenticate with an API token (or QUORUMKV_TOKEN)')
    .option('--cacert <file>', 'CA to verify the nodes with (default: tls.ca of --config)')
    .option('--cert <file>', 'client certificate (TLS client authentication; with --key)')
    .option('--key <file>', 'client key (with --cert)')
    .showSuggestionAfterError(true)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .addHelpText('after', `\n${exitCodeTable()}\n\nRun 'quorumkv COMMAND --help' for a command's arguments and options.`)
    .configureOutput({ writeOut: write.out, writeErr: write.err, outputError: () => {} })
    .exitOverride();

  program
    .command('put')
    .description('write KEY = VALUE; VALUE omitted or "-" reads the value from stdin')
    .argument('<key>')
    .argument('[value]')
    .option('--async', 'acknowledge once the entry is in the leader log (returns a receipt)')
    .option('--lease <id>', 'attach KEY to this lease (quorumkv lease grant): it is deleted when the lease ends', checked(wholeNumber('--lease', 1)))
    .action(pick('put'));
  program
    .command('watch')
    .description('print the changes to keys starting with PREFIX ("" = all) as they are applied, until interrupted')
    .argument('[prefix]', 'key prefix', '')
    .option('--from-index <n>', 'start with the changes at this log index (resume; default: from now)', checked(wholeNumber('--from-index', 1)))
    .option('--prev-value', "also print each key's previous value (--json)")
    .option('--max-events <n>', 'exit after this many events', checked(wholeNumber('--max-events', 1)))
    .action(pick('watch'));
  const lease = program.command('lease').description('TTL leases: keys put with a lease are deleted when it expires or is revoked');
  lease.command('grant').description('grant a lease of TTL_MS milliseconds; prints its id').argument('<ttl-ms>').action(pick('lease grant'));
  lease
    .command('keepalive')
    .description('renew LEASE until interrupted (every third of its TTL)')
    .argument('<lease>')
    .option('--once', 'renew once and exit')
    .action(pick('lease keepalive'));
  lease.command('revoke').description('end LEASE now and delete its keys').argument('<lease>').action(pick('lease revoke'));
  lease.command('list').description("live leases with their remaining time by the leader's clock").action(pick('lease list'));
  readOptions(program.command('get').description('read KEY (exit 1 if it does not exist)').argument('<key>')).action(pick('get'));
  program
    .command('del')
    .description('delete KEY; with --prefix every key starting with it; with --to the range [KEY, TO)')
    .argument('<key>', 'the key, the prefix (--prefix) or the range start (--to)')
    .option('--prefix', 'delete every key starting with KEY ("" = every key)')
    .option('--to <end>', 'delete the keys in [KEY, END)')
    .option('--async', 'acknowledge once the entry is in the leader log')
    .action(pick('del'));
  readOptions(
    program
      .command('scan')
      .description('list keys starting with PREFIX ("" = all), one page')
      .argument('[prefix]', 'key prefix', '')
      .option('--limit <n>', 'keys in this page (server default 1000)', checked(wholeNumber('--limit', 1)))
      .option('--from <key>', 'start at this key (continue a page: the key the previous page said comes next)'),
  ).action(pick('scan'));
  program
    .command('cas')
    .description('compare-and-swap: set KEY to VALUE only if its value is --prev (or it is --absent); exit 5 if not')
    .argument('<key>')
    .argument('<value>')
    .option('--prev <value>', 'the value KEY must have now')
    .option('--absent', 'KEY must not exist now')
    .action(pick('cas'));
  program
    .command('txn')
    .description('compare-then-ops (like etcdctl txn): read compares, success ops and failure ops from stdin or --file')
    .option('--file <file>', 'read the transaction from FILE instead of stdin')
    .addHelpText(
      'after',
      `
Input: three blocks separated by one empty line: compares, success ops, failure ops.
  compares:  value("KEY") = "V" | value("KEY") != "V" | version("KEY") =|!=|<|> N | mod("KEY") =|!=|<|> N
  ops:       put KEY VALUE | del KEY | del --prefix PREFIX
  Strings may be bare words or JSON-quoted ("with spaces"). Exit 0 if the compares held, 5 if not.
Example:
  printf 'value("k") = "v1"\\n\\nput k v2\\n\\nput k-conflict yes\\n' | quorumkv txn`,
    )
    .action(pick('txn'));
  program
    .command('status')
    .description('one row per node: id, address, role, term, commit, applied, lag (exit 3 if a node did not answer)')
    .action(pick('status'));
  const endpoint = program.command('endpoint').description('per-endpoint checks');
  endpoint.command('health').description('whether each endpoint answers and knows a leader (exit 3 if one is unhealthy)').action(pick('endpoint health'));
  endpoint.command('status').description('same as quorumkv status').action(pick('status'));
  program.command('transfer-leader').description('hand leadership to NODE_ID (planned switchover)').argument('<node-id>').action(pick('transfer-leader'));

  const member = program.command('member').description('cluster membership (one change at a time, through the leader)');
  member
    .command('add')
    .description('add node ID (started with "join": true)')
    .argument('<id>')
    .requiredOption('--raft-address <host:port>', 'where the other nodes reach its Raft port')
    .requiredOption('--client-address <host:port>', 'where clients reach it')
    .option('--learner', 'add as a non-voting learner')
    .action(pick('member add'));
  member.command('promote').description('make learner ID a voter').argument('<id>').action(pick('member promote'));
  member.command('remove').description('remove node ID (transfer leadership away first if it leads)').argument('<id>').action(pick('member remove'));
  member.command('list').description('members as the leader sees them: id, role, raft (peer) address, client address').action(pick('member list'));

  logOptions(
    program.command('serve').description('run one node: serve --config FILE --node ID').requiredOption('--node <id>', 'which node of the config'),
  ).action(pick('serve'));
  logOptions(program.command('cluster').description('run every node of --config FILE on this machine')).action(pick('cluster'));
  program
    .command('rebuild')
    .description('rebuild a damaged node from the leader: stop it, rebuild --config FILE --node ID (moves its data dir aside), start it')
    .requiredOption('--node <id>', 'which node of the config')
    .action(pick('rebuild'));
  program
    .command('certs')
    .description('create the local CA and the node certificates a TLS config names')
    .option('--client <names>', 'client certificates too, comma-separated')
    .action(pick('certs'));
  const user = program.command('user').description('users of the auth.usersFile the config names');
  user
    .command('add')
    .description('add or update user NAME; password from QUORUMKV_PASSWORD or stdin')
    .argument('<name>')
    .requiredOption('--role <roles>', 'admin|readwrite|readonly|<custom>[,...]')
    .action(pick('user add'));
  user.command('token').description('issue an API token for user NAME (printed once; only its hash is stored)').argument('<name>').action(pick('user token'));
  user.command('remove').description('remove user NAME').argument('<name>').action(pick('user remove'));
  user.command('list').description('users, their roles, and whether they have a password or tokens').action(pick('user list'));
  const snapshot = program
    .command('snapshot')
    .description('backups: save a point-in-time snapshot of the cluster, verify a file, restore a new cluster from one');
  snapshot
    .command('save')
    .description('stream a consistent backup from the leader (or --node) into FILE (written as FILE.part, checked, fsynced, renamed)')
    .argument('<file>')
    .option('--node <id>', "take it from this node's applied state instead of the leader")
    .action(pick('snapshot save'));
  snapshot
    .command('status')
    .description('verify FILE completely (every record and pair checksum, counts, CRC-32) and print its metadata; exit 7 if damaged')
    .argument('<file>')
    .action(pick('snapshot status'));
  snapshot
    .command('restore')
    .description('seed node --node of a NEW cluster (--config, another cluster name) from FILE; its data dir must be empty or absent')
    .argument('<file>')
    .requiredOption('--node <id>', 'which node of the config')
    .action(pick('snapshot restore'));
  // Listed for help and typo suggestions; `quorumkv drill` itself is dispatched before this parser
  // runs (process/main.ts → src/drill, which has its own option table: `quorumkv drill --help`).
  program
    .command('drill')
    .description('prove failover: a seeded fault drill on a real 3-node cluster, checked for linearizability (quorumkv drill --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action((_options: unknown, cmd: Command) => cmd.error("'drill' runs from the quorumkv binary: quorumkv drill --help", { exitCode: 2 }));
  program.command('version').description('print the quorumkv version (also --version)').action(pick('version'));
  return program;
}

/**
 * Walks argv as commander will: the words that name a command (e.g. ['member', 'add']), and how
 * many other words (arguments, or an unknown subcommand) follow. Option values are skipped.
 */
function scanArgv(program: Command, argv: readonly string[]): { path: string[]; cmd: Command; others: number } {
  const path: string[] = [];
  let cmd: Command = program;
  let others = 0;
  const takesValue = (flag: string): boolean =>
    !flag.includes('=') && [program, cmd].some((c) => c.options.some((o) => (o.long === flag || o.short === flag) && (o.required || o.optional)));
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word.startsWith('-')) {
      if (takesValue(word)) i++;
      continue;
    }
    const sub = others === 0 ? cmd.commands.find((c) => c.name() === word || c.aliases().includes(word)) : undefined;
    if (sub) {
      path.push(word);
      cmd = sub;
    } else others++;
  }
  return { path, cmd, others };
}

/** The command words of argv that name a command (e.g. ['member', 'add']), for "see --help" hints. */
export function commandPath(program: Command, argv: readonly string[]): string[] {
  return scanArgv(program, argv).path;
}

/**
 * "quorumkv member" (a group with nothing after it) or no command at all: the one-line usage
 * error to print, or undefined. Commander would print the whole help to stderr instead.
 */
export function missingSubcommand(program: Command, argv: readonly string[]): string | undefined {
  if (argv.some((a) => a === '-h' || a === '--help' || a === '-v' || a === '--version')) return undefined;
  const { path, cmd, others } = scanArgv(program, argv);
  const subs = cmd.commands.map((c) => c.name()).filter((n) => n !== 'help');
  // Another word is an unknown subcommand: commander names it and suggests the closest.
  if (subs.length === 0 || others > 0) return undefined;
  return path.length === 0 ? 'no command given' : `${path.join(' ')} needs a subcommand: ${subs.join(', ')}`;
}
