// `quorumkv` entry point: `node --import tsx src/cli/main.ts <command> ...` (bin/quorumkv.js loads it).
import { runCli } from './run.js';

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// Exit once stdout is flushed (a pipe may still hold the output), even if a handle lingers.
process.stdout.write('', () => process.exit(code));
