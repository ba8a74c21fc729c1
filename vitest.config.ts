/**
 * Vitest: every test runs inside workerd (Cloudflare's vitest pool) against the Worker in wrangler.toml,
 * with its vars/secrets overridden to point at the services test/global-setup.ts starts in Node.
 */
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest(async ({ inject }) => {
      const originUrl = inject("originUrl");
      const deadOriginUrl = inject("deadOriginUrl");
      // Shadow traffic (test/integration/shadow.test.ts): the test origin answers `/shadow/…/mirror/…` as the shadow.
      const shadow = { origin: `${originUrl}/shadow`, sampleRate: 1, timeoutMs: 3000 };
      const routes = [
        { prefix: "/v1/", cost: 1, billable: true, entitlement: "api" },
        { prefix: "/v1/reports/", cost: 5, billable: true, entitlement: "reports" },
        // Fair shedding's own routes (test/integration/shedding.test.ts): each learns its origin's health alone.
        { prefix: "/v1/shed-a/", cost: 1, billable: true, entitlement: "api" },
        { prefix: "/v1/shed-b/", cost: 1, billable: true, entitlement: "api" },
        { prefix: "/v1/shed-c/", cost: 1, billable: true, entitlement: "api" },
        { prefix: "/v1/slow/", cost: 1, billable: true, entitlement: "api", timeoutMs: 300 },
        {
          prefix: "/v1/old/",
          cost: 1,
          billable: true,
          entitlement: "api",
          deprecation: "2026-01-01T00:00:00Z",
          sunset: "2027-01-01T00:00:00Z",
        },
        {
          prefix: "/v1/mirror/",
          cost: 1,
          billable: true,
          entitlement: "api",
          shadow: { ...shadow, methods: ["GET", "PUT"], compareHeaders: ["content-type", "x-variant"] },
        },
        { prefix: "/v1/mirror/get-only/", cost: 1, billable: true, entitlement: "api", shadow },
        {
          prefix: "/v1/mirror/unsampled/",
          cost: 1,
          billable: true,
          entitlement: "api",
          shadow: { ...shadow, sampleRate: 0 },
        },
        {
          prefix: "/dead/",
          cost: 1,
          billable: true,
          entitlement: "api",
          origin: deadOriginUrl,
          sandboxOrigin: deadOriginUrl,
        },
      ];
      return {
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            DATABASE_URL: inject("databaseUrl"),
            PG_WS_PROXY: inject("pgWsProxy"),
            ORIGIN_URL: originUrl,
            SANDBOX_ORIGIN_URL: `${originUrl}/sandbox`,
            ADMIN_TOKEN: "test-admin-token",
            CLAIMS_SECRET: "test-claims-secret",
            ROUTES: JSON.stringify(routes),
            STRIPE_SECRET_KEY: "sk_test_gateway",
            STRIPE_API_URL: inject("stripeUrl"),
            // Portal mail goes to the dev mailbox; sign-up is on, on the plan test/integration/portal-signup.test.ts makes.
            MAIL_API_URL: inject("mailboxUrl"),
            MAIL_API_KEY: "re_test_mailbox",
            MAIL_FROM: "Gateway Portal <portal@gateway.test>",
            PORTAL_SIGNUP_PLAN: "signup-default",
            // Webhook receivers in the tests listen on 127.0.0.1 over http.
            WEBHOOK_ALLOW_LOCALHOST: "true",
            // One request line per request at info would bury a failure in thousands of lines; the
            // tests of the request line ask for info themselves.
            LOG_LEVEL: "warn",
            // wrangler.toml samples 1 % of ok request lines; the suite sees every one (request-log.test.ts).
            LOG_SAMPLE_RATE: "1",
            // Fair shedding learns each route's health from the responses an isolate sees; tests that
            // hold the shared /v1/ origin for seconds must not turn it on for other tests in the file.
            // test/integration/shedding.test.ts turns it on for its own requests.
            SHEDDING: "off",
          },
        },
      };
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["./test/global-setup.ts"],
    // Before each test: reset what tests inject into the shared services (order independence).
    setupFiles: ["./test/setup-each.ts"],
    // All test files share one Postgres, and the embedded PGlite runs one query at a time (an open
    // transaction blocks every other connection). Run files one after another so they neither starve
    // each other nor see each other's rows mid-test.
    fileParallelism: false,
    // One workerd and one module graph for the whole run, not one per file: a fresh runtime and
    // Worker bundle per file cost ~2-3 s each (more than most files' tests together; measured:
    // test/unit 95 s → 28 s, test/integration's 64 files ~2× faster). So a file starts in the isolate
    // the previous one left: module-level caches (keys, config, the provider's document), Durable
    // Objects and KV entries stay. Every test already makes its own tenants and markers
    // (`seedTenant()`, `uniq()`); a test that needs a cold cache makes its own cold key (see
    // test/README.md). Vitest restores spies after each file; controlledClock() the clock after each test.
    isolate: false,
    // The Worker bundle is loaded before the first test (test/setup-each.ts), not in it.
    testTimeout: 15_000,
    hookTimeout: 30_000,
  },
});
