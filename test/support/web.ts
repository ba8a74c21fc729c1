/**
 * A minimal browser for the web faces' integration tests, through the Worker's real entry: keeps
 * cookies, sends what a browser sends on a same-origin form post (`Origin`, `Sec-Fetch-Site`), and
 * reads the CSRF value from a page. The real-browser tests (test/browser/) use Chromium instead.
 */
import { admin, BASE, expectJson, gateway } from "./gateway";

export class WebClient {
  readonly cookies = new Map<string, string>();

  /** `fetcher`: how requests reach the Worker (default its real entry with the test env; a test may pass other vars). */
  constructor(private readonly fetcher: (path: string, init: RequestInit) => Promise<Response> = gateway) {}

  /** A page, as a browser asks for it. */
  get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.send(path, { method: "GET", headers: { accept: "text/html", ...headers } });
  }

  /** A same-origin form post (urlencoded), as a browser submits a form. */
  post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return this.send(path, {
      method: "POST",
      headers: {
        accept: "text/html",
        "content-type": "application/x-www-form-urlencoded",
        origin: BASE,
        "sec-fetch-site": "same-origin",
        ...headers,
      },
      body: new URLSearchParams(form).toString(),
    });
  }

  async send(path: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0)
      headers.set("cookie", [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; "));
    const res = await this.fetcher(path, { ...init, headers });
    for (const line of res.headers.getAll("set-cookie")) {
      const [pair] = line.split(";");
      const eq = (pair ?? "").indexOf("=");
      const name = (pair ?? "").slice(0, eq).trim();
      const value = (pair ?? "").slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /** A page's body, asserting its status. */
  async page(path: string, status = 200): Promise<string> {
    const res = await this.get(path);
    const html = await res.text();
    if (res.status !== status) throw new Error(`GET ${path}: expected ${status}, got ${res.status}: ${html}`);
    return html;
  }
}

/** The `_csrf` value a page's forms carry. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error("no CSRF field on the page");
  return match[1];
}

/** An operator-minted one-time portal link for a tenant. */
export async function portalLink(
  tenantId: string,
): Promise<{ url: string; expiresAt: string; code: string }> {
  const body = await expectJson<{ url: string; expiresAt: string }>(
    await admin("POST", `/admin/v1/tenants/${tenantId}/portal-sessions`),
    201,
  );
  return { ...body, code: new URL(body.url).searchParams.get("code") ?? "" };
}

/** A browser signed in to a tenant's portal through an operator-minted link. */
export async function portalSession(tenantId: string): Promise<WebClient> {
  const web = new WebClient();
  const { code } = await portalLink(tenantId);
  const res = await web.post("/portal/enter", { code });
  if (res.status !== 303) throw new Error(`portal sign-in answered ${res.status}: ${await res.text()}`);
  return web;
}

/** A browser signed in to the console with the admin token. */
export async function consoleSession(token = "test-admin-token"): Promise<WebClient> {
  const web = new WebClient();
  const res = await web.post("/console/login", { token });
  if (res.status !== 303) throw new Error(`console sign-in answered ${res.status}: ${await res.text()}`);
  return web;
}
