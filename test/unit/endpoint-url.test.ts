/**
 * The SSRF guard of webhook endpoints (workers/events/endpoint-url.ts), in production mode
 * (`allowLocalhost: false`) and in development mode (WEBHOOK_ALLOW_LOCALHOST=true).
 */
import { describe, expect, it } from "vitest";
import { checkEndpointUrl, MAX_ENDPOINT_URL_LENGTH } from "../../workers/events/endpoint-url";

const production = { allowLocalhost: false };
const development = { allowLocalhost: true };

const reason = (raw: string, options = production) => {
  const verdict = checkEndpointUrl(raw, options);
  return verdict.ok ? "accepted" : verdict.reason;
};

const PRIVATE = "must not be a private, link-local or reserved address";
const LOOPBACK = "must not be a loopback address";

describe("webhook endpoint URLs (production)", () => {
  it("accepts a public https URL and answers it normalised", () => {
    expect(checkEndpointUrl("https://Example.COM/hooks?x=1", production)).toEqual({
      ok: true,
      url: "https://example.com/hooks?x=1",
    });
    expect(reason("https://93.184.215.14:8443/in")).toBe("accepted");
    expect(reason("https://[2606:4700::1111]/in")).toBe("accepted");
  });

  it("refuses anything but https", () => {
    expect(reason("http://example.com/hooks")).toBe("must be an https:// URL");
    expect(reason("ftp://example.com/")).toBe("must be an https:// URL");
    expect(reason("javascript:alert(1)")).toBe("must be an https:// URL");
    expect(reason("file:///etc/passwd")).toBe("must be an https:// URL");
  });

  it("refuses what is not an absolute URL, or too long", () => {
    expect(reason("/relative/path")).toBe("must be an absolute URL");
    expect(reason("example.com")).toBe("must be an absolute URL");
    expect(reason(`https://example.com/${"a".repeat(MAX_ENDPOINT_URL_LENGTH)}`)).toBe(
      `must be at most ${MAX_ENDPOINT_URL_LENGTH} characters`,
    );
  });

  it("refuses credentials in the URL", () => {
    expect(reason("https://user:pass@example.com/")).toBe("must not carry credentials");
    expect(reason("https://user@example.com/")).toBe("must not carry credentials");
  });

  it("refuses the cloud metadata address and private ranges", () => {
    expect(reason("https://169.254.169.254/latest/meta-data/")).toBe(PRIVATE);
    expect(reason("https://10.0.0.1/")).toBe(PRIVATE);
    expect(reason("https://172.16.5.4/")).toBe(PRIVATE);
    expect(reason("https://172.31.255.255/")).toBe(PRIVATE);
    expect(reason("https://192.168.1.1/")).toBe(PRIVATE);
    expect(reason("https://100.64.0.1/")).toBe(PRIVATE);
    expect(reason("https://0.0.0.0/")).toBe(PRIVATE);
    expect(reason("https://224.0.0.1/")).toBe(PRIVATE);
    expect(reason("https://[fd00::1]/")).toBe(PRIVATE);
    expect(reason("https://[fe80::1]/")).toBe(PRIVATE);
    // The neighbours of the blocks stay public.
    expect(reason("https://172.32.0.1/")).toBe("accepted");
    expect(reason("https://11.0.0.1/")).toBe("accepted");
  });

  it("sees through decimal, hex and short IPv4 forms", () => {
    expect(reason("https://2852039166/")).toBe(PRIVATE); // 169.254.169.254
    expect(reason("https://0xa9fea9fe/")).toBe(PRIVATE);
    expect(reason("https://0xa9.0xfe.0xa9.0xfe/")).toBe(PRIVATE);
    expect(reason("https://10.1/")).toBe(PRIVATE); // 10.0.0.1
    expect(reason("https://012.0.0.1/")).toBe(PRIVATE); // octal 10.0.0.1
    expect(reason("https://2130706433/")).toBe(LOOPBACK); // 127.0.0.1
    expect(reason("https://0x7f.1/")).toBe(LOOPBACK);
  });

  it("sees through IPv4-mapped IPv6", () => {
    expect(reason("https://[::ffff:169.254.169.254]/")).toBe(PRIVATE);
    expect(reason("https://[::ffff:a9fe:a9fe]/")).toBe(PRIVATE);
    expect(reason("https://[::ffff:10.0.0.1]/")).toBe(PRIVATE);
    expect(reason("https://[::ffff:127.0.0.1]/")).toBe(LOOPBACK);
  });

  it("refuses loopback in every spelling", () => {
    expect(reason("https://localhost/")).toBe(LOOPBACK);
    expect(reason("https://LOCALHOST./")).toBe(LOOPBACK);
    expect(reason("https://api.localhost/")).toBe(LOOPBACK);
    expect(reason("https://127.0.0.1/")).toBe(LOOPBACK);
    expect(reason("https://127.8.9.10/")).toBe(LOOPBACK);
    expect(reason("https://[::1]/")).toBe(LOOPBACK);
  });

  it("refuses metadata names, internal suffixes and single-label hosts", () => {
    expect(reason("https://metadata.google.internal/computeMetadata/v1/")).toBe("must be a public host name");
    expect(reason("https://metadata/")).toBe("must be a public host name");
    expect(reason("https://instance-data/")).toBe("must be a public host name");
    expect(reason("https://db.internal/")).toBe("must be a public host name");
    expect(reason("https://printer.local/")).toBe("must be a public host name");
    expect(reason("https://router.home.arpa/")).toBe("must be a public host name");
    expect(reason("https://intranet/")).toBe("must be a fully qualified public host name");
  });
});

describe("webhook endpoint URLs (WEBHOOK_ALLOW_LOCALHOST=true)", () => {
  it("accepts http:// and loopback receivers", () => {
    expect(reason("http://127.0.0.1:8787/hooks", development)).toBe("accepted");
    expect(reason("http://localhost:3000/", development)).toBe("accepted");
    expect(reason("http://[::1]:3000/", development)).toBe("accepted");
    expect(reason("http://example.com/hooks", development)).toBe("accepted");
  });

  it("still refuses private ranges, metadata and credentials", () => {
    expect(reason("http://169.254.169.254/", development)).toBe(PRIVATE);
    expect(reason("http://10.0.0.1/", development)).toBe(PRIVATE);
    expect(reason("http://[::ffff:192.168.0.1]/", development)).toBe(PRIVATE);
    expect(reason("http://metadata.google.internal/", development)).toBe("must be a public host name");
    expect(reason("http://u:p@127.0.0.1/", development)).toBe("must not carry credentials");
    expect(reason("ftp://127.0.0.1/", development)).toBe("must be an https:// URL");
  });
});
