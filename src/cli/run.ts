// The CLI's dispatcher: parse (commander), run one command, map the outcome to an exit code.
import { CommanderError } from 'commander';
import type { KvClient } from '../client/kv-client.js';
import type { ParsedArgs } from './args.js';
import { UsageError } from './args.js';
import { describeError } from './error-text.js';
import { EXIT_OK, EXIT_USAGE, exitCodeFor } from './exit-codes.js';
import { delCommand, getCommand, putCommand, scanCommand, casCommand } from './kv-commands.js';
import { leaseGrantCommand, leaseKeepAliveCommand, leaseListCommand, leaseRevokeCommand, watchCommand } from './watch-lease-commands.js';
import { memberAddCommand, memberListCommand, memberPromoteCommand, memberRemoveCommand } from './member-commands.js';
import { printJson } from './output.js';
import type { CliIo } from './output.js';
import { buildProgram, commandPath, missingSubcommand } from './program.js';
import { endpointHealthCommand, statusCommand, transferLeaderCommand } from './status-command.js';
import { txnCommand } from './txn-command.js';
import { snapshotSaveCommand } from './snapshot-commands.js';
import { packageVersion } from './version.js';

export { exitCodeFor };

type ClientCommand = (kv: KvClient, args: ParsedArgs, io: CliIo) => Promise<number>;

/**
 * The commands that run nodes (`serve`, `cluster`). The CLI knows only the client; the process
 * layer's entry point (src/process/main.ts) passes these in, so `quorumkv get` never loads the
 * server, storage or Raft code.
 */
export interface NodeCommands {
  serve(args: ParsedArgs): Promise<number>;
  cluster(args: ParsedArgs): Promise<number>;
  /** Moves a stopped node's data dir aside so it is rebuilt from the leader (optional for older embedders). */
  rebuild?(args: ParsedArgs): Promise<number>;
  /** Creates the local CA and certificates a TLS config names. */
  certs?(args: ParsedArgs): Promise<number>;
  /** user add|token|remove|list: edits the users file a config names. */
  user?(args: ParsedArgs): Promise<number>;
  /** snapshot status|restore: verify a backup file, seed a data dir from one. */
  snapshot?(args: ParsedArgs): Promise<number>;
}

const CLIENT_COMMANDS: Record<string, ClientCommand> = {
  put: putCommand,
  get: getCommand,
  del: delCommand,
  scan: scanCommand,
  cas: casCommand,
  txn: txnCommand,
  status: statusCommand,
  'endpoint health': endpointHealthCommand,
  'transfer-leader': transferLeaderCommand,
  'member add': memberAddCommand,
  'member promote': memberPromoteCommand,
  'member remove': memberRemoveCommand,
  'member list': memberListCommand,
  watch: watchCommand,
  'lease grant': leaseGrantCommand,
  'lease keepalive': leaseKeepAliveCommand,
  'lease revoke': leaseRevokeCommand,
  'lease list': leaseListCommand,
  'snapshot save': snapshotSaveCommand,
};

/** Commands that change data: a timeout there may still have been applied. */
const WRITES = new Set(['put', 'del', 'cas', 'txn', 'lease grant', 'lease revoke', 'transfer-leader', 'member add', 'member promote', 'member remove']);

function wantsJson(argv: readonly string[]): boolean {
  return argv.some((a, i) => a === '--json' || a === '--write-out=json' || a === '-w=json' || ((a === '-w' || a === '--write-out') && argv[i + 1] === 'json'));
}

/** Run the CLI with `argv` (without node and script); resolves with the process exit code. */
export async function runCli(argv: string[], io: CliIo, nodeCommands?: NodeCommands): Promise<number> {
  let args: ParsedArgs | undefined;
  const program = buildProgram((p) => (args = p), { out: (s) => io.stdout.write(s), err: (s) => io.stderr.write(s) });
  const json = wantsJson(argv);
  const fail = (err: unknown): number => {
    const code = err instanceof CommanderError || err instanceof UsageError ? EXIT_USAGE : exitCodeFor(err);
    const name = err instanceof CommanderError ? 'UsageError' : err instanceof Error ? err.name : 'Error';
    const raw = err instanceof CommanderError ? err.message.replace(/^error:\s*/, '') : describeError(err, WRITES.has(args?.command ?? ''));
    const message = raw.replace(/\s*\n\s*/g, ' ').trim();
    if (json) printJson(io, { error: { name, message, exitCode: code } });
    else io.stderr.write(`error: ${message}\n`);
    if (code === EXIT_USAGE && (err instanceof CommanderError || err instanceof UsageError)) {
      io.stderr.write(`Run 'quorumkv ${[...commandPath(program, argv), '--help'].join(' ')}' for usage.\n`);
    }
    return code;
  };
  const missing = missingSubcommand(program, argv);
  if (missing) return fail(new UsageError(missing));
  try {
    program.parse(argv, { from: 'user' });
  } catch (err) {
    // --help and --version print and "exit" 0; every other commander error is a usage error.
    if (err instanceof CommanderError && (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')) {
      // A group named without its subcommand ("quorumkv member") printed its help to stderr: exit 2.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    return fail(err);
  }
  if (!args) {
    io.stderr.write(program.helpInformation());
    return EXIT_USAGE;
  }
  try {
    if (args.command === 'version') {
      if (args.values.json) printJson(io, { version: packageVersion() });
      else io.stdout.write(`${packageVersion()}\n`);
      return EXIT_OK;
    }
    const group = args.command.startsWith('user ')
      ? 'user'
      : args.command === 'snapshot status' || args.command === 'snapshot restore'
        ? 'snapshot'
        : undefined;
    if (args.command === 'serve' || args.command === 'cluster' || args.command === 'rebuild' || args.command === 'certs' || group) {
      const nodeCommand = nodeCommands?.[group ?? (args.command as 'serve' | 'cluster' | 'rebuild' | 'certs')];
      if (!nodeCommand) throw new UsageError(`${args.command} works on nodes and is not available from this entry point; use the quorumkv command`);
      return await nodeCommand(args);
    }
    const command = CLIENT_COMMANDS[args.command]!;
    // Loaded only for commands that talk to the cluster: `--version` and `help` skip gRPC and the
    // proto parsing, which are most of the CLI's start-up time.
    const { clientFromArgs } = await import('./client-from-args.js');
    const kv = await clientFromArgs(args, io.env);
    try {
      return await command(kv, args, io);
    } finally {
      await kv.close();
    }
  } catch (err) {
    return fail(err);
  }
}
