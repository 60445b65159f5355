// Whole-machine CPU time from /proc/stat, for the proxy benchmarks: the direct reference and the
// proxied run share this machine's cores, so CPU seconds per message across every process (client,
// server, upstream, Postern) show where a ratio comes from and how much of it Postern adds.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface CpuReading {
  /** Busy CPU seconds over all cores since boot (user, nice, system, irq, softirq, steal). */
  busy: number;
  /** Wall time of the reading, seconds (performance.now()). */
  at: number;
}

export function readMachineCpu(): CpuReading {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user/nice)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return { busy: (user + nice + system + irq + softirq + steal) / 100, at: performance.now() / 1000 };
}

/** "1.23 ms CPU/message over all processes, cores 87% busy" between two readings. */
export function describeMachineCpu(from: CpuReading, to: CpuReading, messages: number): string {
  const busy = to.busy - from.busy;
  const share = busy / ((to.at - from.at) * availableParallelism());
  return `${((1000 * busy) / messages).toFixed(3)} ms CPU/message over all processes, ${availableParallelism()} cores ${(100 * share).toFixed(0)}% busy`;
}
