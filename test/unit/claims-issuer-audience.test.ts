/**
 * README "Verifying requests at the origin": `verifyGatewayClaims` throws on a bad issuer or audience,
 * not only on a bad signature or expiry. The tokens here carry the right signature (same secret, HS256)
 * and a valid lifetime, so only `iss` / `aud` can make them fail.
 */
import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { signGatewayClaims, verifyGatewayClaims } from "../../workers/edge/claims";

const SECRET = "s3cret-s3cret-s3cret";
const claims = (overrides: Record<string, unknown>) => {
  const iat = Math.floor(Date.now() / 1000);
  return {
    sub: "ten_1",
    tenant: "acme",
    key_id: "key_1",
    plan: "growth",
    role: "member",
    env: "live",
    request_id: "req_1",
    iss: "edge-gateway",
    aud: "origin",
    iat,
    exp: iat + 300,
    ...overrides,
  };
};

describe("claims issuer and audience", () => {
  it("accepts a correctly signed token with iss edge-gateway and aud origin (the control)", async () => {
    const token = await sign(claims({}), SECRET, "HS256");
    await expect(verifyGatewayClaims(token, SECRET)).resolves.toMatchObject({ sub: "ten_1" });
    // and the gateway's own tokens name exactly that issuer and audience
    const ours = await verifyGatewayClaims(await signGatewayClaims(claims({}) as never, SECRET), SECRET);
    expect([ours.iss, ours.aud]).toEqual(["edge-gateway", "origin"]);
  });

  it("rejects claims for a wrong issuer", async () => {
    const token = await sign(claims({ iss: "someone-else" }), SECRET, "HS256");
    await expect(verifyGatewayClaims(token, SECRET)).rejects.toThrow(/iss|issuer/i);
    const none = await sign(claims({ iss: undefined }), SECRET, "HS256");
    await expect(verifyGatewayClaims(none, SECRET)).rejects.toThrow();
  });

  it("rejects claims for a wrong audience", async () => {
    const token = await sign(claims({ aud: "another-origin" }), SECRET, "HS256");
    await expect(verifyGatewayClaims(token, SECRET)).rejects.toThrow(/aud|audience/i);
    const none = await sign(claims({ aud: undefined }), SECRET, "HS256");
    await expect(verifyGatewayClaims(none, SECRET)).rejects.toThrow();
  });
});
