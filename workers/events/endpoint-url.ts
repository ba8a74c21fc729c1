/**
 * Where a webhook may be delivered: the SSRF guard, checked when an endpoint is created or changed
 * and again before every attempt. Pure.
 *
 * Refused: anything but https; credentials in the URL; IP literals in private, loopback,
 * link-local (cloud metadata at 169.254.169.254), CGNAT, multicast, reserved or documentation
 * ranges (IPv4, IPv6, IPv4-mapped IPv6 — the URL parser already turns `2130706433` and `0x7f.1`
 * into `127.0.0.1`); `localhost` and names under `.localhost`, `.local`, `.internal`, `.home.arpa`;
 * single-label names (intranet hosts) and known metadata hosts. Deliveries never follow redirects
 * (workers/events/), so a public URL cannot bounce a request inward.
 *
 * A public name that resolves to a private address is the one case a string check cannot see; a
 * Worker's fetch leaves from Cloudflare's network, which does not route to private addresses.
 * With `allowLocalhost` (WEBHOOK_ALLOW_LOCALHOST, development only) http:// is accepted and
 * loopback hosts (localhost, 127.0.0.0/8, ::1) are too — private ranges never are.
 */
import { ipAllowed, parseIp } from "../../durable-objects/cidr";

export const MAX_ENDPOINT_URL_LENGTH = 2048;

const LOOPBACK = ["127.0.0.0/8", "::1/128"];

/** Never a webhook target, whatever the var says. */
const BLOCKED = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.88.99.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/128",
  "64:ff9b::/96",
  "100::/64",
  "2001:db8::/32",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
];

const BLOCKED_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".localdomain"];
const METADATA_HOSTS = new Set(["metadata", "metadata.google.internal", "instance-data"]);

export type EndpointUrlVerdict = { ok: true; url: string } | { ok: false; reason: string };

const refuse = (reason: string): EndpointUrlVerdict => ({ ok: false, reason });

/** Whether `raw` may be a webhook endpoint; `url` is its normalised form. */
export function checkEndpointUrl(raw: string, options: { allowLocalhost: boolean }): EndpointUrlVerdict {
  if (raw.length > MAX_ENDPOINT_URL_LENGTH)
    return refuse(`must be at most ${MAX_ENDPOINT_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("must be an absolute URL");
  }
  if (url.username || url.password) return refuse("must not carry credentials");
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  const literal = host.startsWith("[") ? host.slice(1, -1) : host;
  const ip = parseIp(literal) ? literal : null;
  const loopback = ip ? ipAllowed(ip, LOOPBACK) : host === "localhost" || host.endsWith(".localhost");

  if (url.protocol !== "https:" && !(url.protocol === "http:" && options.allowLocalhost))
    return refuse("must be an https:// URL");
  if (loopback)
    return options.allowLocalhost ? { ok: true, url: url.href } : refuse("must not be a loopback address");
  if (ip)
    return ipAllowed(ip, BLOCKED)
      ? refuse("must not be a private, link-local or reserved address")
      : { ok: true, url: url.href };
  if (METADATA_HOSTS.has(host) || BLOCKED_SUFFIXES.some((s) => host.endsWith(s)))
    return refuse("must be a public host name");
  if (!host.includes(".")) return refuse("must be a fully qualified public host name");
  return { ok: true, url: url.href };
}
