// Direct entry for one node process, without the CLI:
//   node --import tsx src/process/serve-main.ts --config cluster.json --node n1
// (`quorumkv serve` does the same through src/process/main.ts). The integration harness uses this so
// that runtime tests do not depend on the CLI. Environment overrides: see process.ts.
import { runNodeProcess } from './node-process.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const config = arg('--config');
const node = arg('--node');
if (!config || !node) {
  process.stderr.write('usage: serve-main.ts --config <cluster.json> --node <id>\n');
  process.exit(2);
}
try {
  process.exit(await runNodeProcess(config, node));
} catch (err) {
  process.stderr.write(`quorumkv node ${node} failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}
