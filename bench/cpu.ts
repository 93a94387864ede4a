// CPU time of the node processes, from /proc (Linux). Used for "cluster CPU per operation".
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseProcStat } from './stats.js';

let clockTicks: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (almost always 100). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      clockTicks = Number.isInteger(n) && n > 0 ? n : 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime+stime of one process in ms, or undefined when /proc is unavailable or the process is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const { utime, stime } = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    return ((utime + stime) * 1000) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Sum over the processes, or undefined if any of them could not be read (a partial sum would lie). */
export function totalCpuMs(pids: readonly number[]): number | undefined {
  let sum = 0;
  for (const pid of pids) {
    const ms = processCpuMs(pid);
    if (ms === undefined) return undefined;
    sum += ms;
  }
  return sum;
}

/** CPU ms of each node by id, or undefined if any of them could not be read. */
export function cpuMsByNode(nodes: readonly { id: string; pid: number }[]): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const n of nodes) {
    const ms = processCpuMs(n.pid);
    if (ms === undefined) return undefined;
    out[n.id] = ms;
  }
  return out;
}
