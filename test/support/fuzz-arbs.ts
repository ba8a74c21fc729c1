/**
 * fast-check generators for the fuzz suite: API keys (junk and well-formed), header values,
 * paths and queries. Generators that need a real key take it as an argument (keys are issued in
 * `beforeAll`), so they are built inside the test.
 */
import fc from "fast-check";
import { checksum, parseKey } from "../../workers/shared/api-keys";

export const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

export const base62 = (minLength: number, maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...BASE62), minLength, maxLength });

// ---- Keys ----------------------------------------------------------------------------------------

/** A well-formed key with a valid checksum that was never issued. */
export const unissuedKey = fc
  .tuple(fc.constantFrom("live", "test"), base62(24, 24))
  .map(([env, random]) => `gw_${env}_${random}${checksum(`gw_${env}_${random}`)}`);

/** Characters that look like key characters to a human: homoglyphs, zero-width and full-width forms. */
const LOOKALIKES = [
  "\u0430",
  "\u0435",
  "\u043e",
  "\u0391",
  "\uff41",
  "\uff11",
  "\u200b",
  "\u200d",
  "\ufeff",
  "\u00a0",
];

/** Junk that is not whitespace anywhere a `.trim()` could reach (so gluing it to a key breaks it). */
export const junk = fc
  .string({ unit: "binary", minLength: 1, maxLength: 24 })
  .filter((s) => s.trim() === s && s.length > 0 && headerSafe(s));

/**
 * Key material that must never authenticate, derived from real keys: truncated, extended,
 * single-character edits (the checksum catches all of them), wrong checksums, valid-looking
 * prefixes with random bodies, well-formed but never issued, lookalike characters, junk glued on
 * either side, unicode, and huge values (up to ~100 KB).
 */
export function invalidKeyMaterial(
  validKeys: readonly string[],
): fc.Arbitrary<{ kind: string; key: string }> {
  const valid = fc.constantFrom(...validKeys);
  const tagged = (kind: string, arb: fc.Arbitrary<string>) => arb.map((key) => ({ kind, key }));
  return fc
    .oneof(
      tagged(
        "truncated",
        fc.tuple(valid, fc.nat()).map(([k, n]) => k.slice(0, n % k.length)),
      ),
      tagged(
        "extended",
        fc.tuple(valid, base62(1, 12)).map(([k, extra]) => k + extra),
      ),
      tagged(
        "one char changed",
        fc.tuple(valid, fc.nat(), fc.constantFrom(...BASE62, "_", "-")).map(([k, i, c]) => {
          const at = i % k.length;
          const next = k[at] === c ? (c === "A" ? "B" : "A") : c;
          return k.slice(0, at) + next + k.slice(at + 1);
        }),
      ),
      tagged(
        "wrong checksum",
        fc.tuple(valid, base62(6, 6)).map(([k, sum]) => k.slice(0, -6) + sum),
      ),
      tagged(
        "valid prefix, random body",
        fc
          .tuple(
            fc.constantFrom("gw_live_", "gw_test_", "gw_prod_", "gw__", "GW_LIVE_", "gw-live-"),
            base62(0, 80),
          )
          .map(([p, b]) => p + b),
      ),
      tagged("well-formed, never issued", unissuedKey),
      tagged(
        "lookalike character",
        fc.tuple(valid, fc.nat(), fc.constantFrom(...LOOKALIKES)).map(([k, i, c]) => {
          const at = i % (k.length + 1);
          return k.slice(0, at) + c + k.slice(at);
        }),
      ),
      tagged(
        "junk prepended",
        fc.tuple(junk, valid).map(([j, k]) => j + k),
      ),
      tagged(
        "junk appended",
        fc.tuple(valid, junk).map(([k, j]) => k + j),
      ),
      tagged(
        "junk inside",
        fc.tuple(valid, junk, fc.nat()).map(([k, j, i]) => {
          const at = 1 + (i % (k.length - 1));
          return k.slice(0, at) + j + k.slice(at);
        }),
      ),
      tagged(
        "two keys",
        fc.tuple(valid, valid, fc.constantFrom(",", ", ", ";", " ", "")).map(([a, b, sep]) => a + sep + b),
      ),
      tagged("unicode", fc.string({ unit: "grapheme", minLength: 1, maxLength: 60 })),
      tagged("binary", fc.string({ unit: "binary", minLength: 1, maxLength: 60 })),
      tagged(
        "huge",
        fc
          .tuple(fc.oneof(valid, base62(1, 8)), fc.integer({ min: 1_000, max: 100_000 }))
          .map(([seed, size]) => seed.repeat(Math.ceil(size / seed.length)).slice(0, size)),
      ),
    )
    .map(({ kind, key }) => ({ kind, key: key.trim() }))
    .filter(
      ({ key }) => key.length > 0 && headerSafe(key) && !validKeys.includes(key) && parseKey(key) === null,
    );
}

/**
 * How a key is presented. `legal` is RFC 9110 §11.4 framing (`Bearer` in any case, one or more
 * spaces), which a valid key must pass with; the rest (tabs, no separator, other schemes) may be
 * refused. Header values are trimmed of spaces and tabs by the runtime before the gateway sees them.
 */
export interface Framing {
  legal: boolean;
  headers: (key: string) => [string, string][];
  label: string;
}

const pad = fc.constantFrom("", " ", "  ", "\t", " \t ");

export const framing: fc.Arbitrary<Framing> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom("Bearer", "bearer", "BEARER", "BeArEr", "bEARER"),
      fc.integer({ min: 1, max: 6 }),
      pad,
      pad,
    )
    .map(([scheme, spaces, before, after]) => ({
      legal: true,
      label: `${scheme}+${spaces}sp`,
      headers: (key: string): [string, string][] => [
        ["authorization", `${before}${scheme}${" ".repeat(spaces)}${key}${after}`],
      ],
    })),
  fc.tuple(pad, pad).map(([before, after]) => ({
    legal: true,
    label: "x-api-key",
    headers: (key: string): [string, string][] => [["x-api-key", `${before}${key}${after}`]],
  })),
  fc.tuple(fc.constantFrom("Bearer", "bearer"), pad).map(([scheme, after]) => ({
    legal: true,
    label: "both, same key",
    headers: (key: string): [string, string][] => [
      ["authorization", `${scheme} ${key}`],
      ["x-api-key", `${key}${after}`],
    ],
  })),
  fc.constantFrom("\t", " \t", "\t ", "", ":", "=", "\u00a0").map((sep) => ({
    legal: false,
    label: `Bearer${JSON.stringify(sep)}`,
    headers: (key: string): [string, string][] => [["authorization", `Bearer${sep}${key}`]],
  })),
);

/** Framing that can never carry a key, whatever the key: other schemes, misplaced keys. */
export const wrongScheme: fc.Arbitrary<{ label: string; headers: (key: string) => [string, string][] }> =
  fc.oneof(
    fc
      .constantFrom("Basic", "Token", "ApiKey", "Bearer:", "Bearerx", "Digest", "Negotiate", "X")
      .map((scheme) => ({
        label: scheme,
        headers: (key: string): [string, string][] => [["authorization", `${scheme} ${key}`]],
      })),
    fc.constant({
      label: "Basic base64(key:)",
      headers: (key: string): [string, string][] => [["authorization", `Basic ${btoa(`${key}:`)}`]],
    }),
    fc.constant({
      label: "Bearer twice",
      headers: (key: string): [string, string][] => [["authorization", `Bearer Bearer ${key}`]],
    }),
    fc.constant({
      label: "Bearer key junk",
      headers: (key: string): [string, string][] => [["authorization", `Bearer ${key} x`]],
    }),
    fc
      .constantFrom(
        "x-api_key",
        "api-key",
        "x-apikey",
        "apikey",
        "x-auth-token",
        "cookie",
        "proxy-authorization",
      )
      .map((name) => ({
        label: name,
        headers: (key: string): [string, string][] => [[name, name === "cookie" ? `api_key=${key}` : key]],
      })),
  );

// ---- Header values ------------------------------------------------------------------------------

/** Whether the runtime's `Headers` accepts the value (it refuses NUL, and CR/LF inside the value). */
export function headerSafe(value: string): boolean {
  try {
    new Headers([["x-probe", value]]);
    return true;
  } catch {
    return false;
  }
}

/** C0 controls other than HTAB, and DEL: not allowed in an RFC 9110 field value. */
function isControl(c: string): boolean {
  const code = c.charCodeAt(0);
  return (code < 0x20 && code !== 0x09) || code === 0x7f;
}

/**
 * RFC 9110 field values (VCHAR, SP, HTAB and obs-text): what the gateway may forward. (Headers
 * also accepts other control characters; the gateway refuses those with 400 before admission —
 * test/fuzz/hostile-shapes.test.ts — so the properties that expect a forward generate none.)
 */
export const fieldValue = (maxLength = 64) =>
  fc
    .string({ unit: "binary", maxLength })
    .map((s) => Array.from(s, (c) => (isControl(c) ? "?" : c)).join(""))
    .filter(headerSafe);

/** Header-injection attempts that survive the Headers object (which refuses raw CR/LF/NUL). */
export const injection = fc.constantFrom(
  "%0d%0aX-Injected: 1",
  "%0D%0AX-Injected:%201",
  "\\r\\nX-Injected: 1",
  "x\u2028X-Injected: 1",
  "x\u2029X-Injected: 1",
  "x\u0085X-Injected: 1",
  "x\u560aX-Injected: 1",
  "x\u560dX-Injected: 1",
  "x\u010d\u010aX-Injected: 1",
  "x\uff0d\uff0aX-Injected: 1",
  "a, X-Injected: 1",
  "x;X-Injected=1",
);

/** Something for a spoofed X-Gateway-Claims: JWT-shaped (alg none, HS256 with a wrong key), or not. */
export const forgedClaims = fc.oneof(
  fc.constant(
    `${btoa('{"alg":"none","typ":"JWT"}')}.${btoa('{"sub":"ten_x","role":"admin","env":"live"}')}.`.replaceAll(
      "=",
      "",
    ),
  ),
  fc
    .tuple(
      fc.base64String({ minLength: 4, maxLength: 60 }),
      fc.base64String({ minLength: 4, maxLength: 200 }),
    )
    .map(([h, p]) => `${h}.${p}.${"A".repeat(43)}`),
  fieldValue(200),
);

/** A spoofed X-Request-ID: ours in shape, or anything. */
export const spoofedRequestId = fc.oneof(
  fc
    .string({ unit: fc.constantFrom(..."0123456789abcdefghjkmnpqrstvwxyz"), minLength: 26, maxLength: 26 })
    .map((s) => `req_${s}`),
  fieldValue(80),
);

export const hostileValue = (maxLength = 200) =>
  fc.oneof(
    { weight: 4, arbitrary: fieldValue(maxLength) },
    { weight: 2, arbitrary: injection },
    { weight: 1, arbitrary: forgedClaims },
    { weight: 1, arbitrary: spoofedRequestId },
  );

// ---- Paths -----------------------------------------------------------------------------------------

/** Path segments aimed at confusing a prefix match or a normaliser. */
const TRICKY_SEGMENTS = [
  "v1",
  "V1",
  "v0",
  "v2",
  "admin",
  "ADMIN",
  "gateway",
  "health",
  "reports",
  "old",
  "..",
  ".",
  "",
  "...",
  "%2e%2e",
  "%2E%2E",
  "%2e%2E",
  ".%2e",
  "%2e.",
  "%2e",
  "%2f",
  "%2F",
  "%5c",
  "%5C",
  "\\",
  "..%2f",
  "..%2F",
  "..%5c",
  "..\\",
  "%252e%252e",
  "%252f",
  "%00",
  "%c0%ae%c0%ae",
  "%c0%af",
  "%e0%80%ae",
  "%ef%bc%8f",
  "%uff0e%uff0e",
  "..;",
  ";",
  "admin;x=1",
  "%3b",
  "%3f",
  "%23",
  "%20",
  "~",
  "*",
  "%",
  "%4",
  "%zz",
  "\u2025",
  "\uff0e\uff0e",
  "\u3002",
];

/** A segment that never starts a query or fragment and never names a test-origin behaviour. */
export const segment = fc
  .oneof(
    { weight: 5, arbitrary: fc.constantFrom(...TRICKY_SEGMENTS) },
    { weight: 2, arbitrary: base62(1, 10) },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 })
        .map((bytes) => bytes.map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")),
    },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 6 }) },
  )
  .map((s) => s.replace(/[?#]/g, "_"));

const SEPARATORS = ["/", "/", "/", "/", "//", "\\", "/./", "/../", "%2f", "/%2e/"];

/** The start of a path: a route prefix (or a mangled one), a gateway endpoint, or nothing. */
const LEADS = [
  "/v1/",
  "/v1/",
  "/v1/",
  "/v1",
  "/v1/reports/",
  "/v1/old/",
  "/V1/",
  "//v1/",
  "/./v1/",
  "/v1/../",
  "/v1/%2e%2e/",
  "/v1/..%2f",
  "\\v1\\",
  "/%76%31/",
  "/admin/v1/",
  "/gateway/v1/",
  "/gateway/",
  "/health/",
  "/",
  "",
];

/** Paths whose normal form would make the test origin sleep, stream or redirect, or hit /dead/. */
export function touchesOriginBehaviour(pathname: string): boolean {
  return /\/(slow|stream|redirect)|^\/dead(\/|$)|^\/v1\/slow(\/|$)/i.test(pathname);
}

/**
 * A hostile path: a lead, then segments joined by plain or mangled separators. The marker is put
 * in the query (first), so whatever the path turns into, the origin's record of it can be found.
 */
export const hostilePath = (marker: string) =>
  fc
    .tuple(
      fc.constantFrom(...LEADS),
      fc.array(fc.tuple(segment, fc.constantFrom(...SEPARATORS)), { maxLength: 8 }),
      junkQuery,
      fc.boolean(),
    )
    .map(([lead, parts, query, fragment]) => {
      const path = lead + parts.map(([s, sep], i) => (i === 0 ? s : sep + s)).join("");
      return `${path.startsWith("/") ? "" : "/"}${path}?fz=${marker}${query}${fragment ? "#frag" : ""}`;
    })
    .filter((p) => {
      const url = new URL(`https://gateway.test${p}`);
      return !touchesOriginBehaviour(url.pathname) && !hasOriginQuery(url);
    });

/**
 * Paths under a route prefix built from segments that are odd but not ambiguous (unicode,
 * double-encodings, overlong UTF-8, names of gateway endpoints): most of them must be proxied, and
 * reach the origin exactly as normalised. (`;` path parameters are ambiguous: see `pathParamPath`.)
 */
export const plausiblePath = (marker: string) =>
  fc
    .tuple(
      fc.constantFrom("/v1/", "/v1/old/", "/v1/reports/", "/v1"),
      fc.array(
        segment.filter((s) => s.length > 0 && !/%(2e|2f|5c|00|3b)|;|\\|^\.{1,2}$|\//i.test(s)),
        { maxLength: 6 },
      ),
      junkQuery,
    )
    .map(([lead, segs, query]) => `${lead}${segs.join("/")}?fz=${marker}${query}`)
    .filter((p) => {
      const url = new URL(`https://gateway.test${p}`);
      return !touchesOriginBehaviour(url.pathname) && !hasOriginQuery(url);
    });

/** Dot-dot in every spelling a normaliser might honour (`..;` is `..` to a servlet container). */
const DOT_DOT = [
  "..",
  "..;",
  "..;x=1",
  "%2e%2e",
  "%2E%2e",
  ".%2e",
  "%2e.",
  "..%00",
  "%252e%252e",
  "%c0%ae%c0%ae",
  "\u2025",
  "..",
];
const SLASH = ["/", "\\", "%2f", "%2F", "%5c", "%5C", "//", "%252f"];

/** Attempts to climb out of a route prefix into the gateway's own endpoints or another prefix. */
export const traversalPath = (marker: string) =>
  fc
    .tuple(
      fc.constantFrom("/v1/", "/v1/old/", "/v1/reports/", "/v1/x/y/", "/v1"),
      fc.array(fc.tuple(fc.constantFrom(...DOT_DOT), fc.constantFrom(...SLASH)), {
        minLength: 1,
        maxLength: 5,
      }),
      fc.constantFrom(
        "admin/v1/plans",
        "admin/v1/tenants",
        "admin",
        "gateway/v1/keys",
        "gateway/openapi.json",
        "health/ready",
        "v2/x",
        "dead-end",
        "",
      ),
      junkQuery,
    )
    .map(([lead, climbs, target, query]) => {
      const climb = climbs.map(([d, s]) => d + s).join("");
      return `${lead}${climb}${target}?fz=${marker}${query}`;
    })
    .filter((p) => {
      const url = new URL(`https://gateway.test${p}`);
      return !touchesOriginBehaviour(url.pathname) && !hasOriginQuery(url);
    });

/** Query junk appended after the marker (starting with `&` when not empty). */
export const junkQuery = fc
  .array(
    fc.oneof(
      fc.tuple(base62(0, 8), fieldValue(16)).map(([k, v]) => `${k}=${encodeURIComponent(v)}`),
      fc.constantFrom(
        "",
        "=",
        "&",
        "a[b]=c",
        "__proto__[x]=1",
        "%",
        "%zz",
        "%00",
        "%0d%0aX-Injected:1",
        "a=%2e%2e%2f%2e%2e%2fadmin",
        "url=http://127.0.0.1/admin",
        "x=é",
        "x=😀",
        ";",
        "\\",
        "?",
        "/admin/v1/plans",
      ),
    ),
    { maxLength: 4 },
  )
  .map((parts) => (parts.length === 0 ? "" : `&${parts.join("&")}`));

/** The test origin answers `?status=` and `?ms=` itself; the generators leave them alone. */
export function hasOriginQuery(url: URL): boolean {
  return url.searchParams.has("status") || url.searchParams.has("ms");
}

// ---- Methods -----------------------------------------------------------------------------------------

export const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
export const method = fc.constantFrom(...METHODS);
export const methodWithBody = fc.constantFrom("POST", "PUT", "PATCH", "DELETE");

// ---- Shapes refused before admission (workers/edge/request-shape.ts, resolve-route.ts) -------------

/** C0 controls the runtime's `Headers` accepts in a value (all but HTAB, CR, LF, NUL), and DEL. */
export const ACCEPTED_CONTROLS = [
  ...Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).filter((c) => !"\t\r\n".includes(c)),
  "\u007f",
];

/** A field value with at least one such control character somewhere in it. */
export const controlValue = fc
  .tuple(fieldValue(16), fc.constantFrom(...ACCEPTED_CONTROLS), fieldValue(16))
  .map(([a, c, b]) => `x${a}${c}${b}`)
  .filter(headerSafe);

/** Header names the runtime accepts that are not RFC 9110 tokens: a byte ≥ 0x80 inside a token. */
export const nonTokenName = fc
  .tuple(base62(0, 6), fc.integer({ min: 0x80, max: 0xff }), base62(0, 6))
  .map(([a, b, c]) => `x-${a}${String.fromCharCode(b)}${c}`.toLowerCase())
  .filter((name) => {
    try {
      new Headers([[name, "v"]]);
      return true;
    } catch {
      return false;
    }
  });

/** What announces a body on the wire (RFC 9112 §6.3): a non-zero Content-Length or any Transfer-Encoding. */
export const bodyAnnouncement: fc.Arbitrary<[string, string][]> = fc.oneof(
  fc
    .oneof(
      fc.integer({ min: 1, max: 1_000_000_000 }).map(String),
      fc.constantFrom("01", "1 ", "5, 5", "abc", "-1"),
    )
    .map((n): [string, string][] => [["content-length", n]]),
  fc
    .constantFrom("chunked", "gzip, chunked", "identity", "Chunked", "x")
    .map((te): [string, string][] => [["transfer-encoding", te]]),
  fc.constant<[string, string][]>([
    ["content-length", "0"],
    ["transfer-encoding", "chunked"],
  ]),
);

/** A path under a route prefix with a `;` path parameter (raw or encoded) in some segment. */
export const pathParamPath = (marker: string) =>
  fc
    .tuple(
      fc.constantFrom("/v1/", "/v1/old/", "/v1/reports/", "/v1/x/"),
      fc.constantFrom(";", "..;", ".;", "..;x=1", "a;b", "a;jsessionid=1", "%3b", "%3B", "..%3b", ";/"),
      fc.constantFrom("admin/v1/plans", "gateway/v1/keys", "x", "", "..;/admin", "health"),
    )
    .map(([lead, param, tail]) => `${lead}${param}/${tail}?fz=${marker}`);
