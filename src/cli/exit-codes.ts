// Process exit codes of the `quorumkv` CLI (scripts depend on them: keep them stable).
export const EXIT_OK = 0;
/** The key (or range) does not exist. */
export const EXIT_NOT_FOUND = 1;
/** Bad command line, bad config file, or a request the cluster rejected as invalid. */
export const EXIT_USAGE = 2;
/** No node answered, no leader could be found, or the deadline passed. */
export const EXIT_UNAVAILABLE = 3;
/** Any other failure (e.g. an internal error reported by a node). */
export const EXIT_FAILED = 4;
