// Shared by the focused core tests: build messages, run one Ready through MemoryStorage, and elect
// node 'a' of {a, b, c} by hand (no network, no randomness).
import { MemoryStorage, RawNode, type Message, type RaftConfig, type Ready } from '../../src/raft/index.js';

export const message = (m: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message => ({
  logTerm: 0,
  index: 0,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
  ...m,
});

/** Persist one Ready the way the runtime does (snapshot, entries, hard state), then advance. */
export function persist(node: RawNode, storage: MemoryStorage): Ready {
  const rd = node.ready();
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  node.advance(rd);
  return rd;
}

export function newNode(id: string, config: Partial<RaftConfig> = {}): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage({ voters: ['a', 'b', 'c'], learners: [] });
  const node = new RawNode({ id, electionTicks: 10, heartbeatTicks: 1, random: () => 0, ...config }, storage);
  return { node, storage };
}

/** Node 'a' campaigns and wins term 1 with b's vote; its no-op (index 1) is persisted, not committed. */
export function electedLeader(config: Partial<RaftConfig> = {}): { node: RawNode; storage: MemoryStorage; persist: () => Ready } {
  const { node, storage } = newNode('a', config);
  node.campaign();
  persist(node, storage);
  node.step(message({ type: 'voteResp', from: 'b', to: 'a', term: 1 }));
  persist(node, storage);
  return { node, storage, persist: () => persist(node, storage) };
}
