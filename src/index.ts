// The public API of the `quorumkv` package: the client SDK and its types. Running a node is
// `quorumkv/server` (src/process/index.ts).
export * from './client/index.js';
