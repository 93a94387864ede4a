// `quorumkv drill`: failover you can prove. The CLI dispatches `drill` to drillMain.
export { drillMain, DRILL_EXIT, DRILL_USAGE, parseDuration } from './cli.js';
export { runDrill, formatReport, DRILL_DEFAULTS } from './drill.js';
export type { DrillOptions, DrillResult } from './drill.js';
export { checkHistory } from './checks.js';
export type { CheckReport, Violation, ViolationKind } from './checks.js';
export { checkRegister } from './linearizability.js';
export type { RegisterOp, KeyVerdict } from './linearizability.js';
export { measureRecovery } from './recovery.js';
export type { HistoryOp, FaultRecord, FaultKind, SavedHistory } from './history.js';
export { FAULT_KINDS, parseSavedHistory } from './history.js';
export { LinkProxy } from './link-proxy.js';
