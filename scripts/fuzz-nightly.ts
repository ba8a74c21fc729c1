/**
 * `npm run fuzz:nightly`: the fuzz properties (test/fuzz/) with a fresh random seed, or `FUZZ_SEED`
 * to replay one. Prints the seed first; on a failure, prints the command that reproduces the run.
 * `npm test` keeps each property's fixed seed: the seed reaches the tests through vitest's `provide`
 * (`fuzzSeed`, read by `fuzzSeed()` in test/support/fuzz-kit.ts), which only this script sets.
 *
 * Usage: npm run fuzz:nightly                 (a random seed)
 *        FUZZ_SEED=123456 npm run fuzz:nightly   (replay that seed)
 *        npm run fuzz:nightly -- test/fuzz/paths.test.ts   (some files only)
 */
import { randomInt } from "node:crypto";
import { startVitest } from "vitest/node";

function seedFromEnv(): number {
  const text = process.env.FUZZ_SEED;
  if (text === undefined || text === "") return randomInt(0, 2 ** 31);
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got "${text}"`);
  return seed;
}

const seed = seedFromEnv();
const files = process.argv.slice(2);
const only = files.length > 0 ? files : ["test/fuzz/"];
console.log(`FUZZ_SEED=${seed}`);

process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
process.env.WRANGLER_SEND_METRICS ??= "false";
const vitest = await startVitest("test", only, { run: true, watch: false, provide: { fuzzSeed: seed } });
const failed = !vitest || vitest.state.getCountOfFailedTests() > 0 || process.exitCode === 1;
await vitest?.close();
if (failed) {
  console.log(`\nfuzz:nightly failed with FUZZ_SEED=${seed}. Reproduce with:`);
  console.log(`  FUZZ_SEED=${seed} npm run fuzz:nightly${files.length > 0 ? ` -- ${files.join(" ")}` : ""}`);
  process.exitCode = 1;
} else {
  console.log(`\nfuzz:nightly passed with FUZZ_SEED=${seed}.`);
}
