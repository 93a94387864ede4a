// The `quorumkv` command's entry point (bin/quorumkv.js runs its compiled form). The CLI itself
// knows only the SDK; this entry adds the commands that run nodes, which load the server lazily.
import { runCli } from '../cli/run.js';
import { clusterCommand, serveCommand } from './commands.js';

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }, { serve: serveCommand, cluster: clusterCommand });
// Exit once stdout is flushed (a pipe may still hold the output), even if a handle lingers.
process.stdout.write('', () => process.exit(code));
