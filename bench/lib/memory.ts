/**
 * Resident memory from /proc: VmRSS of a process tree (a server and its descendants), per command
 * name (for a Workers case: `node` = the Miniflare host, `workerd` = the runtime running the Worker).
 */
import { readFileSync } from "node:fs";
import { procTable } from "./cpu";

function rssKiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0; // gone
  }
}

/** RSS in MiB of `root` and every live descendant, summed per command name. */
export function treeRssMiB(root: number): Record<string, number> {
  const table = procTable();
  const children = new Map<number, number[]>();
  for (const s of table.values()) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const total: Record<string, number> = {};
  const stack = [root];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const stat = table.get(pid);
    if (stat) total[stat.comm] = (total[stat.comm] ?? 0) + rssKiB(pid) / 1024;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}
