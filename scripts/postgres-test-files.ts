/**
 * The test files CI runs a second time, against the PostgreSQL server (`.ci/run`), one per line.
 * The first pass (`npm test`, embedded PGlite) runs every file; the second needs only the files
 * whose outcome can depend on which Postgres answers.
 *
 * The rule, decided from the source so that it stays right as files are added: a file is left out
 * only when it cannot reach the database at all —
 * - it is in test/fuzz/ (the request path's properties; they run once, in the first pass), or
 * - neither it nor any module it imports, followed through relative imports (`import type` does
 *   not count: it is erased), imports `cloudflare:workers` or `cloudflare:test` (the only way to
 *   the Worker's bindings, DATABASE_URL among them, and to the Worker itself), and it does not
 *   `inject()` the database's address.
 * Everything else runs on both, so a new file that touches Postgres is never silently left out.
 *
 *   npx tsx scripts/postgres-test-files.ts            # the files, one per line
 *   npx tsx scripts/postgres-test-files.ts --explain  # every test file, with why it is in or out
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const BINDINGS = new Set(["cloudflare:workers", "cloudflare:test"]);
const INJECTS_DATABASE = /inject\(\s*["'](databaseUrl|pgWsProxy)["']\s*\)/;
/** Whole `import type … from "…"` / `export type … from "…"` statements (single or multi-line). */
const TYPE_ONLY = /^\s*(?:import|export)\s+type\s[^;]*?from\s*["'][^"']+["'];?/gm;
/** `from "x"`, `import "x"`, `import("x")`: every module specifier a file loads at run time. */
const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g;

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return testFiles(path);
      return name.endsWith(".test.ts") ? [path] : [];
    });
}

function resolveRelative(from: string, specifier: string): string | undefined {
  const base = resolve(dirname(from), specifier);
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, join(base, "index.ts")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** The import chain from `file` to a binding module or a database `inject()`, or undefined. */
function reachesDatabase(file: string, seen = new Set<string>()): string[] | undefined {
  if (seen.has(file)) return undefined;
  seen.add(file);
  const source = readFileSync(file, "utf8").replace(TYPE_ONLY, "");
  const name = relative(root, file);
  if (INJECTS_DATABASE.test(source)) return [name, "inject(database)"];
  for (const [, specifier] of source.matchAll(SPECIFIER)) {
    if (specifier === undefined) continue;
    if (BINDINGS.has(specifier)) return [name, specifier];
    if (!specifier.startsWith(".")) continue;
    const target = resolveRelative(file, specifier);
    const chain = target === undefined ? undefined : reachesDatabase(target, seen);
    if (chain) return [name, ...chain];
  }
  return undefined;
}

const explain = process.argv.includes("--explain");
for (const file of testFiles(join(root, "test"))) {
  const name = relative(root, file);
  if (name.startsWith("test/fuzz/")) {
    if (explain) console.log(`out  ${name}  (fuzz: runs once, in the first pass)`);
    continue;
  }
  const chain = reachesDatabase(file);
  if (!explain) {
    if (chain) console.log(name);
  } else if (chain) {
    console.log(`in   ${name}  (${chain.slice(1).join(" > ")})`);
  } else {
    console.log(`out  ${name}  (no import reaches cloudflare:workers or cloudflare:test)`);
  }
}
