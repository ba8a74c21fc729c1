/**
 * The API reference pages: `/portal/docs` (the provider's API from PORTAL_OPENAPI_URL, then the
 * gateway's tenant API — never an admin operation — with "try it" hooks for the browser tests) and
 * `/gateway/docs` (the gateway's whole document, rendered by the Worker with nothing from another
 * origin, under the web faces' CSP). The provider's document is operator input: its hostile strings
 * are escaped, and an unreachable, oversized, invalid or non-OpenAPI document is a Notice, never a 500.
 *
 * Requests with another PORTAL_OPENAPI_URL go to the real default export with a copy of the env.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, inject, it } from "vitest";
import worker from "../../workers/index";
import { BASE, gateway, seedTenant, uniq } from "../support/gateway";
import { portalSession, type WebClient } from "../support/web";

let web: WebClient;
beforeAll(async () => {
  const { tenantId } = await seedTenant();
  web = await portalSession(tenantId);
});

/** `/portal/docs` for the signed-in browser, with these vars changed. */
async function docsPage(
  vars: Record<string, string>,
): Promise<{ status: number; html: string; res: Response }> {
  const cookie = [...web.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}/portal/docs`, { headers: { accept: "text/html", cookie } }),
    { ...env, ...vars } as never,
    ctx as never,
  );
  const html = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, html, res };
}

interface Doc {
  paths: Record<string, Record<string, { tags?: string[] }>>;
  webhooks: Record<string, Record<string, { tags?: string[] }>>;
}

/** `op-<method>-<path slug>` of every operation and webhook of the gateway's document, split by tag. */
async function gatewayOperationIds(): Promise<{ tenant: string[]; other: string[] }> {
  const doc = await (await gateway("/gateway/openapi.json")).json<Doc>();
  const tenant: string[] = [];
  const other: string[] = [];
  for (const [path, item] of [...Object.entries(doc.paths), ...Object.entries(doc.webhooks)]) {
    for (const [method, op] of Object.entries(item)) {
      const slug = path
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "");
      (op.tags?.includes("Tenant API") ? tenant : other).push(`op-${method}-${slug}`);
    }
  }
  return { tenant, other };
}

const sectionIds = (html: string) =>
  [...html.matchAll(/<section class="op[^"]*" id="([^"]+)"/g)].map((m) => m[1]);

describe("/portal/docs", () => {
  it("shows every tenant API operation with try-it hooks, no admin operation, and says when the provider published nothing", async () => {
    const html = await web.page("/portal/docs");
    const { tenant, other } = await gatewayOperationIds();
    expect(tenant.length).toBeGreaterThanOrEqual(8);
    expect(other.some((id) => id.includes("admin-v1"))).toBe(true);
    const ids = sectionIds(html);
    expect(ids.sort()).toEqual([...tenant].sort());
    expect(html).not.toContain("/admin/");

    expect(html).toContain("Your API provider hasn&#39;t published a reference here yet.");
    expect(html).toMatch(/<a href="\/portal\/docs" aria-current="page">Docs<\/a>/);
    expect(html).toContain('<script src="/_static/try-it.js" defer="">');
    expect(html).toContain('<link rel="stylesheet" href="/_static/reference.css"/>');
    // Each operation: a curl command against this origin and a try-it form with a password key field.
    const keys =
      html.match(/<section class="op[^"]*" id="op-get-gateway-v1-keys">[\s\S]*?<\/section>/)?.[0] ?? "";
    expect(keys).toContain("curl -X GET &#39;https://gateway.test/gateway/v1/keys&#39;");
    expect(keys).toMatch(/<form class="try-it" hidden="" data-method="get" data-path="\/gateway\/v1\/keys">/);
    expect(keys).toMatch(/<input type="password" name="key" autocomplete="off"/);
    expect(keys).toContain('<pre class="try-output" aria-live="polite"></pre>');
    const create =
      html.match(/<section class="op[^"]*" id="op-post-gateway-v1-keys">[\s\S]*?<\/section>/)?.[0] ?? "";
    expect(create).toContain("This sends a real POST request with your test key");
    expect(create).toMatch(
      /<input type="text" name="header.idempotency-key" data-in="header" data-name="idempotency-key"/,
    );
    expect(create).toMatch(/<textarea name="body"/);
  });

  it("renders the provider's document with every string escaped, its ids first", async () => {
    const { status, html, res } = await docsPage({ PORTAL_OPENAPI_URL: "/openapi.json" });
    expect(status).toBe(200);
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(html).toContain("Pet store");
    const ids = sectionIds(html);
    expect(ids.slice(0, 3)).toEqual([
      "op-get-v1-pets",
      "op-post-v1-pets",
      "op-delete-v1-pets-id-script-alert-1-script",
    ]);
    expect(ids).toContain("op-get-gateway-v1-usage");
    // No markup from the document reaches the page: not in text, not out of an attribute.
    expect(html).not.toContain("<img");
    expect(html).not.toMatch(/<script>|"><script/);
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(&#39;xss&#39;)&quot;&gt;");
    expect(html).toContain('data-path="/v1/pets/{id}/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
    // A recursive schema is named, not expanded forever; deprecated is marked.
    expect(html).toContain("(recursive, see above)");
    expect(html).toMatch(/id="op-delete-v1-pets-id-script-alert-1-script">[\s\S]*?Deprecated/);
    // curl and try-it go to this origin, where the gateway serves the provider's API.
    expect(html).toContain("curl -X GET &#39;https://gateway.test/v1/pets&#39;");
  });

  it("shows a Notice, not an error, for an unreachable, failing, oversized, invalid or Swagger 2.0 document", async () => {
    const cases: [Record<string, string>, string][] = [
      [
        { ORIGIN_URL: inject("deadOriginUrl"), PORTAL_OPENAPI_URL: `/openapi.json?m=${uniq()}` },
        "could not be reached",
      ],
      [{ PORTAL_OPENAPI_URL: "/openapi.json?variant=error" }, "answered HTTP 500"],
      [{ PORTAL_OPENAPI_URL: "/openapi.json?variant=big" }, "is larger than 1 MiB"],
      [{ PORTAL_OPENAPI_URL: "/openapi.json?variant=big-chunked" }, "is larger than 1 MiB"],
      [{ PORTAL_OPENAPI_URL: "/openapi.json?variant=invalid" }, "is not valid JSON"],
      [{ PORTAL_OPENAPI_URL: "/openapi.json?variant=swagger" }, "is Swagger 2.0"],
    ];
    for (const [vars, reason] of cases) {
      const { status, html } = await docsPage(vars);
      expect(status, reason).toBe(200);
      expect(html, reason).toMatch(
        new RegExp(
          `<p class="notice notice-error" role="alert">The provider&#39;s API reference [^<]*${reason}`,
        ),
      );
      // The tenant API is still there.
      expect(html, reason).toContain('id="op-get-gateway-v1-usage"');
    }
  });

  it("fetches the provider's document once per isolate, not per page view", async () => {
    const marker = uniq();
    for (let i = 0; i < 3; i++) {
      const { html } = await docsPage({ PORTAL_OPENAPI_URL: `/openapi.json?m=${marker}` });
      expect(html).toContain("Pet store");
    }
    const calls = await (await fetch(`${inject("originUrl")}/__calls?contains=${marker}`)).json<unknown[]>();
    expect(calls).toHaveLength(1);
  });

  it("is behind the portal's door", async () => {
    const res = await gateway("/portal/docs", { headers: { accept: "text/html" } });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/portal/signin");
  });
});

describe("/gateway/docs", () => {
  it("renders every operation of the gateway's document offline: no script, style or link from another host, under the CSP", async () => {
    const res = await gateway("/gateway/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    const html = await res.text();

    const tags = [...html.matchAll(/<(script|link|img|iframe)\b[^>]*>/g)].map((m) => m[0]);
    expect(tags.length).toBeGreaterThan(0);
    for (const tag of tags) {
      expect(tag).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/\sstyle="/); // no inline style attribute (the CSP refuses them)

    const { tenant, other } = await gatewayOperationIds();
    expect(sectionIds(html).sort()).toEqual([...tenant, ...other].sort());
    expect(html).not.toContain('class="try-it"');
  });
});
