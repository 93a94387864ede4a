export { runCli, exitCodeFor } from './run.ts';
export { EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_FAILED } from './exit-codes.ts';
export type { CliIo } from './output.ts';
