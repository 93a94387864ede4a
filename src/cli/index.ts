export { runCli, exitCodeFor, type NodeCommands } from './run.js';
export { EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_FAILED } from './exit-codes.js';
export type { CliIo } from './output.js';
