/**
 * CPU accounting from /proc: user+system time of a process tree (a server and all its descendants),
 * of the whole machine, and of this process's reaped children (wrk). All in clock ticks.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second (`getconf CLK_TCK`, 100 on Linux). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** utime + stime */
  ticks: number;
  /** cutime + cstime: time of reaped children */
  childTicks: number;
}

function readStat(pid: number | "self"): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // gone
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); field n is rest[n - 3].
  const field = (n: number) => Number(rest[n - 3]);
  return {
    pid: pid === "self" ? process.pid : pid,
    comm: text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")),
    ppid: field(4),
    ticks: field(14) + field(15),
    childTicks: field(16) + field(17),
  };
}

/** One read of every process in /proc: pid → stat. Pass it to `treeTicks` to sample several trees at once. */
export function procTable(): Map<number, ProcStat> {
  const table = new Map<number, ProcStat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) table.set(stat.pid, stat);
  }
  return table;
}

/** utime+stime (+ reaped children's) of `root` and every live descendant, in ticks. */
export function treeTicks(root: number, table: Map<number, ProcStat> = procTable()): number {
  return Object.values(treeTicksByCommand(root, table)).reduce((a, b) => a + b, 0);
}

/** `root` and every live descendant, from one process table. */
export function processTree(root: number, table: Map<number, ProcStat>): ProcStat[] {
  const children = new Map<number, number[]>();
  for (const s of table.values()) {
    const list = children.get(s.ppid);
    if (list) list.push(s.pid);
    else children.set(s.ppid, [s.pid]);
  }
  const tree: ProcStat[] = [];
  const stack = [root];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const stat = table.get(pid);
    if (stat) tree.push(stat);
    stack.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** The same, per command name (node, workerd, nginx, postgres…). */
export function treeTicksByCommand(
  root: number,
  table: Map<number, ProcStat> = procTable(),
): Record<string, number> {
  const total: Record<string, number> = {};
  // Own time plus that of children it has reaped: short-lived descendants (a Postgres backend per
  // connection) end up in their parent's cutime/cstime once they exit.
  for (const stat of processTree(root, table))
    total[stat.comm] = (total[stat.comm] ?? 0) + stat.ticks + stat.childTicks;
  return total;
}

/** Whole-machine busy and total ticks (all CPUs), from the first line of /proc/stat. */
export function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user nice system idle iowait irq softirq steal
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** This process's own CPU ticks, and those of its reaped children (e.g. a finished wrk). */
export function selfTicks(): { own: number; children: number } {
  const s = readStat("self");
  return { own: s?.ticks ?? 0, children: s?.childTicks ?? 0 };
}
