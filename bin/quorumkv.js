#!/usr/bin/env node
// The published `quorumkv` command: register tsx (the sources are TypeScript, no build step),
// then run the CLI.
const { register } = await import('tsx/esm/api');
register();
await import('../src/cli/main.js');
