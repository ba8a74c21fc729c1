/**
 * `tsx scripts/stripe-standin.ts [--port N] [--host H] [--state FILE]`: runs the local Stripe stand-in
 * (dev/stripe-standin.ts) and prints its URL; `--state` keeps its data in FILE across runs. Point a `stripe` client at it with
 * `host`/`port`/`protocol: "http"` and any `sk_test_…` key. Ctrl-C stops it.
 */
import { startStripeStandIn } from "../dev/stripe-standin";

function parseArgs(argv: string[]): { port?: number; host?: string; stateFile?: string } {
  const out: { port?: number; host?: string; stateFile?: string } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const [name, inline] = arg.includes("=") ? arg.split("=", 2) : [arg, undefined];
    const value = () => inline ?? argv[++i];
    if (name === "--port") {
      const port = Number(value());
      if (!Number.isInteger(port) || port < 0 || port > 65_535) usage(`bad --port`);
      out.port = port;
    } else if (name === "--host") {
      const host = value();
      if (!host) usage("bad --host");
      out.host = host;
    } else if (name === "--state") {
      const file = value();
      if (!file) usage("bad --state");
      out.stateFile = file;
    } else if (name === "--help" || name === "-h") {
      usage();
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  return out;
}

function usage(problem?: string): never {
  if (problem) console.error(problem);
  console.error("usage: tsx scripts/stripe-standin.ts [--port N] [--host H] [--state FILE]");
  process.exit(problem ? 2 : 0);
}

async function main(): Promise<void> {
  const standIn = await startStripeStandIn(parseArgs(process.argv.slice(2)));
  console.log(`Stripe stand-in listening on ${standIn.url}`);
  console.log(`  e.g. curl ${standIn.url}/v1/billing/meters -u sk_test_local:`);
  console.log(
    `  control: POST ${standIn.url}/__control/{fail,latency,reset-faults,reset}, GET ${standIn.url}/__control/events`,
  );
  console.log("  Ctrl-C stops it.");
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void standIn.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((err: unknown) => {
  console.error(`stripe stand-in failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
