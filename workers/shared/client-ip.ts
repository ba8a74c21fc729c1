/** The client's address. CF-Connecting-IP is set by Cloudflare's edge and cannot be forged by the client there. */
export const clientIp = (c: { req: { header(name: string): string | undefined } }): string | null =>
  c.req.header("cf-connecting-ip") ?? null;
