/**
 * Resident memory from /proc: VmRSS of a process tree (a server and its descendants), per command
 * name (for a Workers case: `node` = the Miniflare host, `workerd` = the runtime running the Worker),
 * and workerd's RSS split by kind: `workerd:anon` (heaps: V8 isolates and the runtime's own
 * allocations) and `workerd:mapped` (file and shared-memory pages it maps: the SQLite files of Durable
 * Objects, the queue broker and KV on tmpfs/disk). A leak in a Worker's code grows the first.
 */
import { readFileSync } from "node:fs";
import { processTree, procTable } from "./cpu";

interface Rss {
  total: number;
  anon: number;
  mapped: number;
}

function rssKiB(pid: number): Rss {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) =>
      Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, "m").exec(status)?.[1] ?? 0);
    return { total: field("VmRSS"), anon: field("RssAnon"), mapped: field("RssFile") + field("RssShmem") };
  } catch {
    return { total: 0, anon: 0, mapped: 0 }; // gone
  }
}

/** RSS in MiB of `root` and every live descendant, summed per command name. */
export function treeRssMiB(root: number): Record<string, number> {
  const total: Record<string, number> = {};
  for (const stat of processTree(root, procTable())) {
    const rss = rssKiB(stat.pid);
    total[stat.comm] = (total[stat.comm] ?? 0) + rss.total / 1024;
    if (stat.comm === "workerd") {
      total["workerd:anon"] = (total["workerd:anon"] ?? 0) + rss.anon / 1024;
      total["workerd:mapped"] = (total["workerd:mapped"] ?? 0) + rss.mapped / 1024;
    }
  }
  return total;
}
