// Public surface of the storage layer.
export type { RaftStorage, StorageUpdate } from './raft-storage.ts';
export type { StateMachine, ScanOptions, ScanResult } from './state-machine.ts';
export type { Command, Op, Compare, OpResult, CommandResult, CommandErrorName, KeyValue } from './command.ts';
export { FileRaftStorage, type FileRaftStorageOptions } from './file-raft-storage.ts';
export { MemoryRaftStorage, type MemoryRaftStorageOptions } from './memory-raft-storage.ts';
export { LevelStateMachine, type LevelStateMachineOptions } from './level-state-machine.ts';
export { MemoryStateMachine, type MemoryStateMachineOptions } from './memory-state-machine.ts';
export { encodeCommand, decodeCommand, validateCommand, MAX_TXN_DEPTH } from './codec.ts';
export { prefixEnd } from './keyspace.ts';
export { DEFAULT_MAX_SESSIONS, DEFAULT_MAX_RESULTS_PER_SESSION } from './session-table.ts';
export {
  StorageCorruptionError, StorageFailedError, StorageClosedError, InvalidStorageUpdateError, InvalidCommandError, InvalidSnapshotError,
} from './errors.ts';
