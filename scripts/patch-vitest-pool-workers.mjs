/**
 * `postinstall`: applies the upstream fix of cloudflare/workers-sdk#15092 (merged as #15106, in a
 * release that needs wrangler ≥ 4.87 and so Node 22) to @cloudflare/vitest-pool-workers 0.15.1.
 *
 * The bug: the wrapper the pool puts around the Worker's default export (and each Durable Object
 * class) wraps its own prototype in one more `Proxy` on every construction, and workerd constructs
 * one per call. After N calls through `exports.default.fetch`, every property read walks N nested
 * traps: measured here, ~5 ms per call for the first 100 calls of a file, ~220 ms per call for calls
 * 300–400 (quadratic in each test file). The fix installs the proxy once per class; what the trap
 * does is unchanged, so what the tests exercise is unchanged — only the harness stops slowing down.
 *
 * Plain Node (.mjs) because it runs before anything else is set up, and with `npm ci --omit=dev`
 * (no pool installed: nothing to do). Fails loudly when the pool's code is neither the known buggy
 * text nor already fixed (a version bump: check whether the fix is still needed, then drop this).
 * Writes a new file instead of rewriting it in place, so a node_modules hard-linked from another
 * checkout keeps its own copy.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pool = join(root, "node_modules/@cloudflare/vitest-pool-workers");
const file = join(pool, "dist/worker/lib/cloudflare/test-internal.mjs");

const BUGGY = `	function Class(...args) {
		Class.prototype = new Proxy(Class.prototype, { get(target, key, receiver) {
			const value = Reflect.get(target, key, receiver);
			if (value !== void 0) return value;
			if (typeof key === "symbol" || IGNORED_KEYS.includes(key)) return;
			return getUnknownPrototypeKey.call(receiver, key);
		} });
		return Reflect.construct(superClass, args, Class);
	}`;

const FIXED = `	let proxied = false; // cloudflare/workers-sdk#15092: one proxy per class, not one per construction
	function Class(...args) {
		if (!proxied) {
			proxied = true;
			Class.prototype = new Proxy(Class.prototype, { get(target, key, receiver) {
				const value = Reflect.get(target, key, receiver);
				if (value !== void 0) return value;
				if (typeof key === "symbol" || IGNORED_KEYS.includes(key)) return;
				return getUnknownPrototypeKey.call(receiver, key);
			} });
		}
		return Reflect.construct(superClass, args, Class);
	}`;

if (!existsSync(file)) {
  console.log("[patch-vitest-pool-workers] @cloudflare/vitest-pool-workers not installed: nothing to do");
} else {
  const { version } = JSON.parse(readFileSync(join(pool, "package.json"), "utf8"));
  const text = readFileSync(file, "utf8");
  if (text.includes(FIXED)) {
    console.log(`[patch-vitest-pool-workers] ${version}: already fixed`);
  } else if (version === "0.15.1" && text.split(BUGGY).length === 2) {
    writeFileSync(`${file}.tmp`, text.replace(BUGGY, FIXED));
    renameSync(`${file}.tmp`, file);
    console.log(`[patch-vitest-pool-workers] ${version}: wrapper prototype proxied once (workers-sdk#15092)`);
  } else {
    console.error(
      `[patch-vitest-pool-workers] @cloudflare/vitest-pool-workers ${version} is not the 0.15.1 this fix was ` +
        "written for: check whether it still re-wraps the prototype on every construction " +
        "(createProxyPrototypeClass in dist/worker/lib/cloudflare/test-internal.mjs), then update or remove " +
        "scripts/patch-vitest-pool-workers.mjs and the postinstall script in package.json.",
    );
    process.exit(1);
  }
}
