/**
 * The fuzz suite's path oracle, written from the README and not from the gateway's code (it uses
 * neither workers/edge/resolve-route.ts nor route-table.ts): whatever path the origin received,
 * read the way a lenient origin reads it — one more percent-decode, `\` taken for `/`, `;…` path
 * parameters dropped (servlet style), empty segments collapsed, `.` and `..` resolved — stays under
 * the route prefix it was proxied on and never names the gateway's own `/admin` or `/gateway`.
 * The route table is the running config's (`ROUTES` in vitest.config.ts), read here as data.
 */
import { env } from "cloudflare:workers";

interface RouteEntry {
  prefix: string;
  entitlement?: string;
}

/** The configured routes, longest prefix first (README: "the route table picks the route by longest prefix"). */
export const ROUTES: readonly RouteEntry[] = (JSON.parse(env.ROUTES) as RouteEntry[]).sort(
  (a, b) => b.prefix.length - a.prefix.length,
);

/** The route a path falls under by longest prefix (`/v1` is under `/v1/`), or undefined. */
export function routeOf(pathname: string): RouteEntry | undefined {
  return ROUTES.find((r) => pathname.startsWith(r.prefix) || `${pathname}/` === r.prefix);
}

/** One percent-decode, byte by byte (a byte ≥ 0x80 stays one latin-1 char); a stray `%` stays. */
export function percentDecodeOnce(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/**
 * The path a lenient origin serves for `path` (already decoded): `\` is `/`, `;…` is dropped from
 * every segment, empty segments collapse, `.` is dropped and `..` climbs (never above the root).
 */
export function lenientResolve(path: string): string {
  const out: string[] = [];
  const segments = path.replaceAll("\\", "/").split("/");
  segments.forEach((raw, i) => {
    const segment = raw.split(";")[0] ?? "";
    const last = i === segments.length - 1;
    if (segment === "..") out.pop();
    else if (segment !== "." && segment !== "") out.push(segment);
    // A trailing `/`, `/.` or `/..` leaves the path a directory: keep its slash.
    if (last && (segment === "" || segment === "." || segment === "..") && i > 0) out.push("");
  });
  return `/${out.join("/")}`;
}

/**
 * Why the origin must never have received `pathname` (its path without query, `/sandbox` already
 * taken off for test keys), or undefined when it is fine.
 */
export function originPathViolation(pathname: string): string | undefined {
  const route = routeOf(pathname);
  if (!route) return "outside the route table";
  const served = lenientResolve(percentDecodeOnce(pathname));
  if (/^\/(admin|gateway)(\/|$)/i.test(served)) return `names a gateway endpoint once decoded: ${served}`;
  if (!(served.startsWith(route.prefix) || `${served}/` === route.prefix)) {
    return `leaves its route ${route.prefix} once decoded: ${served}`;
  }
  return undefined;
}

/**
 * A path no reader can take two ways: segments of unreserved characters, sub-delimiters other
 * than `;`, and percent-encoded bytes ≥ 0x80 (UTF-8), none of them only dots, no empty segment
 * but a trailing slash. The gateway must proxy such a path when its route is in the table.
 */
export function isPlainPath(pathname: string): boolean {
  const segment = "(?:[A-Za-z0-9._~!$&'()*+,=:@-]|%[89A-Fa-f][0-9A-Fa-f])+";
  if (!new RegExp(`^(?:/${segment})+/?$`).test(pathname)) return false;
  return pathname.split("/").every((s) => !/^\.+$/.test(s));
}

/**
 * The spellings the README names as ambiguous ("ambiguous paths (`%2f`, `%2e`, `%3b`, `;`, `\`,
 * `//`) are refused with 400"): a path carrying one is answered 400 before the key is looked at.
 */
const README_AMBIGUOUS = ["%2f", "%2e", "%3b", ";", "\\", "//"];

export function namesReadmeAmbiguity(pathname: string): boolean {
  const lower = pathname.toLowerCase();
  return README_AMBIGUOUS.some((s) => lower.includes(s));
}
