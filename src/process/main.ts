// The `quorumkv` command's entry point (bin/quorumkv.js runs its compiled form). The CLI itself
// knows only the SDK; this entry adds the commands that run nodes, which load the server lazily.
import { runCli } from '../cli/run.js';
import { certsCommand, clusterCommand, rebuildCommand, serveCommand, snapshotCommand, userCommand } from './commands.js';

// grpc-js passes an IP address as the TLS server name when a node is dialled by IP; Node then
// prints DEP0123 on every CLI call. The name is not used for verification (the certificate's IP SAN is).
process.noDeprecation = true;
const argv = process.argv.slice(2);
// `drill` has its own module and option table (src/drill/), loaded only when asked for; the
// command tree lists it (src/cli/program.ts) so help and typo suggestions know it.
const code =
  argv[0] === 'drill'
    ? await (await import('../drill/index.js')).drillMain(argv.slice(1), { stdout: process.stdout, stderr: process.stderr })
    : await runCli(
        argv,
        { stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin },
        {
          serve: serveCommand,
          cluster: clusterCommand,
          rebuild: rebuildCommand,
          certs: certsCommand,
          user: userCommand,
          snapshot: snapshotCommand,
        },
      );
// Exit once stdout is flushed (a pipe may still hold the output), even if a handle lingers.
process.stdout.write('', () => process.exit(code));
