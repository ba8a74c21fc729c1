import { describe, expect, it } from "vitest";
import { signGatewayClaims, verifyGatewayClaims } from "../../workers/edge/claims";

const input = {
  sub: "ten_1",
  tenant: "acme",
  key_id: "key_1",
  plan: "growth",
  role: "member" as const,
  env: "live" as const,
  request_id: "req_1",
};

describe("signed tenant claims", () => {
  it("round-trips with the shared secret", async () => {
    const token = await signGatewayClaims(input, "s3cret");
    const claims = await verifyGatewayClaims(token, "s3cret");
    expect(claims).toMatchObject(input);
    expect(claims.exp - claims.iat).toBe(300);
  });

  it("fails with another secret, a tampered payload, or no token", async () => {
    const token = await signGatewayClaims(input, "s3cret");
    await expect(verifyGatewayClaims(token, "other")).rejects.toThrow();
    const [h, p, s] = token.split(".");
    const forged = btoa(JSON.stringify({ ...JSON.parse(atob(p as string)), sub: "ten_2" })).replace(
      /=+$/,
      "",
    );
    await expect(verifyGatewayClaims(`${h}.${forged}.${s}`, "s3cret")).rejects.toThrow();
    await expect(verifyGatewayClaims(null, "s3cret")).rejects.toThrow();
  });

  it("signs the same token where the runtime has no Uint8Array.prototype.toBase64 (Node 20, where origins verify)", async () => {
    const unicode = { ...input, tenant: "acmé-😀" };
    const now = Date.UTC(2026, 0, 1);
    const native = await signGatewayClaims(unicode, "s3cret", now);
    const proto = Uint8Array.prototype as { toBase64?: unknown };
    const toBase64 = proto.toBase64;
    expect(toBase64).toBeTypeOf("function"); // workerd has it: the line above ran the native path
    delete proto.toBase64;
    try {
      expect(await signGatewayClaims(unicode, "s3cret", now)).toBe(native);
    } finally {
      proto.toBase64 = toBase64;
    }
    const [, payload] = native.split(".");
    expect(payload).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("signs with the current secret after the secret changes (the imported key is cached per secret)", async () => {
    await signGatewayClaims(input, "first");
    const token = await signGatewayClaims(input, "second");
    await expect(verifyGatewayClaims(token, "second")).resolves.toMatchObject(input);
    await expect(verifyGatewayClaims(token, "first")).rejects.toThrow();
  });

  it("carries non-ASCII claims as UTF-8 (a tenant slug or plan name is not always ASCII)", async () => {
    const token = await signGatewayClaims({ ...input, plan: "Größe ✓" }, "s3cret");
    await expect(verifyGatewayClaims(token, "s3cret")).resolves.toMatchObject({ plan: "Größe ✓" });
  });

  it("expires after five minutes", async () => {
    const token = await signGatewayClaims(input, "s3cret", Date.now() - 301_000);
    await expect(verifyGatewayClaims(token, "s3cret")).rejects.toThrow();
  });
});
