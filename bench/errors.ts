/** The bench was started with options it cannot run with (names the option and what is accepted). */
export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`${option}: ${message}; run \`npm run bench -- --help\` for the options`);
  }
}

/** The cluster under test did not come up, or stopped answering, so the numbers would be meaningless. */
export class BenchClusterError extends Error {
  override name = 'BenchClusterError';
  constructor(
    message: string,
    readonly logTails: Record<string, string> = {},
  ) {
    super(message);
  }
}
