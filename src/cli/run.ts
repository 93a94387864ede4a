// The CLI's dispatcher: parse, run one command, map the outcome to an exit code.
import {
  ClientUsageError,
  ClusterUnavailableError,
  ConfigError,
  DeadlineExceededError,
  InvalidArgumentError,
  NotLeaderError,
  OverloadedError,
  ShuttingDownError,
} from '../api/errors.js';
import type { KvClient } from '../client/kv-client.js';
import { parseCli, usage, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE } from './exit-codes.js';
import { delCommand, getCommand, putCommand, scanCommand } from './kv-commands.js';
import { memberAddCommand, memberListCommand, memberPromoteCommand, memberRemoveCommand } from './member-commands.js';
import { printJson } from './output.js';
import type { CliIo } from './output.js';
import { statusCommand, transferLeaderCommand } from './status-command.js';
import { packageVersion } from './version.js';

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
}

const CLIENT_COMMANDS: Record<string, ClientCommand> = {
  put: putCommand,
  get: getCommand,
  del: delCommand,
  scan: scanCommand,
  status: statusCommand,
  'transfer-leader': transferLeaderCommand,
  'member add': memberAddCommand,
  'member promote': memberPromoteCommand,
  'member remove': memberRemoveCommand,
  'member list': memberListCommand,
};

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof InvalidArgumentError || err instanceof ClientUsageError) {
    return EXIT_USAGE;
  }
  if (
    err instanceof ClusterUnavailableError ||
    err instanceof DeadlineExceededError ||
    err instanceof NotLeaderError ||
    err instanceof OverloadedError ||
    err instanceof ShuttingDownError
  ) {
    return EXIT_UNAVAILABLE;
  }
  return EXIT_FAILED;
}

/** Run the CLI with `argv` (without node and script); resolves with the process exit code. */
export async function runCli(argv: string[], io: CliIo, nodeCommands?: NodeCommands): Promise<number> {
  let json = argv.includes('--json');
  try {
    const args = parseCli(argv);
    json = args.values.json === true;
    if (args.command === 'help') {
      io.stdout.write(`${usage()}\n`);
      return EXIT_OK;
    }
    if (args.command === 'version') {
      io.stdout.write(`${packageVersion()}\n`);
      return EXIT_OK;
    }
    if (args.command === 'serve' || args.command === 'cluster' || args.command === 'rebuild' || args.command === 'certs' || args.command.startsWith('user ')) {
      const nodeCommand = nodeCommands?.[args.command.startsWith('user ') ? 'user' : (args.command as 'serve' | 'cluster' | 'rebuild' | 'certs')];
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
    const code = exitCodeFor(err);
    const e = err instanceof Error ? err : new Error(String(err));
    if (json) printJson(io, { error: { name: e.name, message: e.message, exitCode: code } });
    else io.stderr.write(`error: ${e.message}\n`);
    if (err instanceof UsageError) io.stderr.write(`\n${usage()}\n`);
    return code;
  }
}
