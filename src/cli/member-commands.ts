// member add / promote / remove / list: one-server-at-a-time membership changes through the leader.
import type { KvClient } from '../client/kv-client.js';
import type { Member } from '../client/types.js';
import { UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { EXIT_OK } from './exit-codes.js';
import { printJson, printLine, renderTable } from './output.js';
import type { CliIo } from './output.js';

function printMembers(io: CliIo, args: ParsedArgs, members: Member[], done?: string): void {
  if (args.values.json) {
    printJson(io, { ok: true, members });
    return;
  }
  if (done) printLine(io, done);
  const rows = members.map((m) => [m.id, m.voter ? 'voter' : 'learner', m.raftAddress || '-', m.clientAddress || '-']);
  printLine(io, renderTable(['ID', 'ROLE', 'PEER (RAFT) ADDRESS', 'CLIENT ADDRESS'], rows));
}

export async function memberAddCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [id] = args.positionals as [string];
  const { raftAddress, clientAddress } = args.values;
  if (raftAddress === undefined || clientAddress === undefined) {
    throw new UsageError('member add needs --raft-address HOST:PORT and --client-address HOST:PORT');
  }
  const learner = args.values.learner === true;
  const members = await kv.addMember({ id, raftAddress, clientAddress, learner });
  printMembers(io, args, members, `added ${id} as a ${learner ? 'learner' : 'voter'}`);
  return EXIT_OK;
}

export async function memberPromoteCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [id] = args.positionals as [string];
  printMembers(io, args, await kv.promote(id), `promoted ${id} to voter`);
  return EXIT_OK;
}

export async function memberRemoveCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const [id] = args.positionals as [string];
  printMembers(io, args, await kv.removeMember(id), `removed ${id}`);
  return EXIT_OK;
}

export async function memberListCommand(kv: KvClient, args: ParsedArgs, io: CliIo): Promise<number> {
  const members = await kv.members();
  if (args.values.json) printJson(io, members);
  else printMembers(io, args, members);
  return EXIT_OK;
}
