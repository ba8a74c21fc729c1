import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../durable-objects/sha256";

/** FIPS 180-2 test vectors. */
const ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

type WithToHex = { toHex?: () => string };

describe("sha256Hex", () => {
  it("answers lower-case hex for text and for bytes", async () => {
    expect(await sha256Hex("abc")).toBe(ABC);
    expect(await sha256Hex("")).toBe(EMPTY);
    expect(await sha256Hex(new TextEncoder().encode("abc"))).toBe(ABC);
  });

  it("answers the same where the runtime has no Uint8Array.prototype.toHex (Node 20)", async () => {
    const proto = Uint8Array.prototype as WithToHex;
    const native = proto.toHex;
    expect(native).toBeTypeOf("function"); // workerd has it: the first test ran the native path
    delete proto.toHex;
    try {
      expect(await sha256Hex("abc")).toBe(ABC);
      expect(await sha256Hex("")).toBe(EMPTY);
    } finally {
      proto.toHex = native;
    }
  });
});
