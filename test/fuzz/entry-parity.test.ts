/**
 * The fuzz files call the Worker's default export directly (see test/support/fuzz-kit.ts for why).
 * This property sends the same generated requests both ways — directly, and through `gateway()`
 * (exports.default.fetch, the service-binding path the other integration tests use) — and checks
 * that the answers agree: same status, same problem code, same origin path.
 *
 * Both ways build the same `new Request()`, so both see what the runtime has already normalised
 * (URL parsing resolves `.`/`..` in any spelling and `\`; `Headers` trims values and refuses
 * CR/LF/NUL): parity here is about the two entries, not about those shapes (test/wire/ sends them).
 */
import fc from "fast-check";
import { beforeAll, describe, it } from "vitest";
import {
  fieldValue,
  framing,
  hostilePath,
  hostileValue,
  invalidKeyMaterial,
  traversalPath,
} from "../support/fuzz-arbs";
import {
  check,
  checkOriginCalls,
  checkResponse,
  FUZZ_PLAN,
  type FuzzRequest,
  fuzzSeed,
  Ledger,
  type Sent,
} from "../support/fuzz-kit";
import { createKey, seedTenant } from "../support/gateway";

const ledger = new Ledger("entry-parity.test.ts");
const keys: string[] = [];

beforeAll(async () => {
  const t = await seedTenant({ plan: FUZZ_PLAN });
  keys.push(t.key, (await createKey(t.tenantId, { env: "test" })).key);
});

function summary(sent: Sent): string {
  const origin = sent.fromOrigin ? (JSON.parse(sent.body) as { path: string }).path : "-";
  return `${sent.status} ${sent.problem?.code ?? "-"} ${origin}`;
}

describe("fuzz: entry parity", () => {
  it("answers generated requests the same directly and through exports.default.fetch", {
    timeout: 90_000,
  }, async () => {
    const run = ledger.campaign("same request, both entries");
    const request: fc.Arbitrary<FuzzRequest> = fc.oneof(
      fc
        .tuple(
          invalidKeyMaterial(keys).filter((m) => m.key.length < 4000),
          framing,
        )
        .map(([m, f]) => ({ method: "GET", path: `/v1/${run.marker}/junk`, headers: f.headers(m.key) })),
      fc.tuple(fc.constantFrom(...keys), framing).map(([k, f]) => ({
        method: "GET",
        path: `/v1/${run.marker}/framing`,
        headers: f.headers(k),
      })),
      fc
        .tuple(fc.constantFrom(...keys), fc.oneof(hostilePath(run.marker), traversalPath(run.marker)))
        .map(([k, path]) => ({ method: "GET", path, headers: [["x-api-key", k]] as [string, string][] })),
      fc
        .tuple(
          fc.constantFrom(...keys),
          fc.array(
            fc.tuple(
              fc.constantFrom("x-fz", "connection", "te", "x-request-id", "x-gateway-claims"),
              hostileValue(100),
            ),
            { maxLength: 4 },
          ),
        )
        .map(([k, extra]) => ({
          method: "GET",
          path: `/v1/${run.marker}/headers`,
          headers: [["authorization", `Bearer ${k}`], ...extra] as [string, string][],
        })),
      fc
        .tuple(fc.constantFrom(...keys), fieldValue(200), fc.constantFrom("POST", "PUT", "PATCH", "DELETE"))
        .map(([k, body, method]) => ({
          method,
          path: `/v1/${run.marker}/body`,
          headers: [
            ["x-api-key", k],
            ["content-type", "text/plain"],
          ] as [string, string][],
          body,
        })),
    );
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const direct = await run.send(r);
        const viaGateway = await run.send(r, { via: "gateway" });
        checkResponse(direct);
        checkResponse(viaGateway);
        check(
          summary(direct) === summary(viaGateway),
          `entries disagree: direct ${summary(direct)} vs gateway() ${summary(viaGateway)}`,
          direct,
        );
      }),
      { numRuns: 150, seed: fuzzSeed(0x70617231) },
    );
    const calls = await checkOriginCalls(run.marker);
    check(calls.length === run.reachedOrigin, `origin saw ${calls.length} calls for ${run.reachedOrigin}`);
  });
});
