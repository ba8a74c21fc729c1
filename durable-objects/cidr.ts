/**
 * IP allowlists: parse CIDR blocks (IPv4 and IPv6) and test addresses against them. Pure.
 * IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) match IPv4 blocks.
 */

interface Block {
  v6: boolean;
  bits: bigint;
  prefix: number;
}

function parseV4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const v = Number(part);
    if (v > 255) return null;
    n = (n << 8n) | BigInt(v);
  }
  return n;
}

function parseV6(text: string): bigint | null {
  let head = text;
  let tailV4: bigint | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const left = halves[0] ? halves[0].split(":") : [];
  const right = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...right];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    n = (n << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tailV4 !== null) n = (n & ~0xffffffffn) | tailV4;
  return n;
}

/** Parses an address to `{ v6, bits }`, unwrapping IPv4-mapped IPv6; null if invalid. */
export function parseIp(text: string): { v6: boolean; bits: bigint } | null {
  const v4 = parseV4(text);
  if (v4 !== null) return { v6: false, bits: v4 };
  const v6 = parseV6(text);
  if (v6 === null) return null;
  if (v6 >> 32n === 0xffffn) return { v6: false, bits: v6 & 0xffffffffn };
  return { v6: true, bits: v6 };
}

/** Parses `addr/prefix` (or a bare address = single host); null if invalid. */
export function parseCidr(text: string): Block | null {
  const [addr, prefixText, extra] = text.trim().split("/");
  if (addr === undefined || extra !== undefined) return null;
  const ip = parseIp(addr);
  if (!ip) return null;
  const width = ip.v6 ? 128 : 32;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (prefix > width) return null;
  return { v6: ip.v6, bits: ip.bits, prefix };
}

/** True if `ip` falls inside any of `cidrs`. An invalid ip never matches. */
export function ipAllowed(ip: string, cidrs: readonly string[]): boolean {
  const addr = parseIp(ip);
  if (!addr) return false;
  return cidrs.some((text) => {
    const block = parseCidr(text);
    if (!block || block.v6 !== addr.v6) return false;
    const width = block.v6 ? 128n : 32n;
    const shift = width - BigInt(block.prefix);
    return addr.bits >> shift === block.bits >> shift;
  });
}
