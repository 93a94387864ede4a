// serve / cluster: thin wrappers over the runtime (src/node/), imported lazily so that the client
// commands never load the server, storage and Raft code.
import { loadConfig, selectNode } from './config.js';
import { UsageError } from '../cli/args.js';
import type { ParsedArgs } from '../cli/args.js';

function configOf(args: ParsedArgs, command: string): string {
  if (args.values.config === undefined) throw new UsageError(`${command} needs --config FILE`);
  if (args.values.endpoints !== undefined) throw new UsageError(`${command} takes --config, not --endpoints`);
  return args.values.config;
}

/** Runs one node until it is told to stop; resolves with its exit code. */
export async function serveCommand(args: ParsedArgs): Promise<number> {
  const config = configOf(args, 'serve');
  if (args.values.node === undefined) throw new UsageError('serve needs --node ID');
  // Fail fast with a ConfigError naming the file and the field before anything starts.
  selectNode(await loadConfig(config), args.values.node);
  const { runNodeProcess } = await import('./node-process.js');
  return runNodeProcess(config, args.values.node);
}

/** Runs every node of the config as child processes; resolves with the exit code. */
export async function clusterCommand(args: ParsedArgs): Promise<number> {
  const config = configOf(args, 'cluster');
  await loadConfig(config);
  const { runClusterLauncher } = await import('./cluster-launcher.js');
  return runClusterLauncher(config);
}
