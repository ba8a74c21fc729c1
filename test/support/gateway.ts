/**
 * Test fixtures: call the gateway through its real entry (`exports.default.fetch`, in workerd),
 * drive the admin API, seed tenants, and read what the test origin received.
 */
import { env, exports } from "cloudflare:workers";

export const BASE = "https://gateway.test";

/** A short unique suffix so tests sharing one Postgres never collide. */
export const uniq = () => crypto.randomUUID().slice(0, 8);

/** A request through the Worker's real entry. Redirects are not followed, as a client of an API expects. */
export function gateway(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, { redirect: "manual", ...init }));
}

export function admin(
  method: string,
  path: string,
  body?: unknown,
  token = env.ADMIN_TOKEN,
): Promise<Response> {
  return gateway(path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Parses a JSON body and asserts the status, showing the body when it is not what was expected. */
export async function expectJson<T = Record<string, unknown>>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}

export interface PlanFixture {
  id: string;
  name: string;
}

export async function createPlan(overrides: Record<string, unknown> = {}): Promise<PlanFixture> {
  return expectJson<PlanFixture>(
    await admin("POST", "/admin/v1/plans", {
      name: `plan-${uniq()}`,
      burstCapacity: 1000,
      refillTokens: 1000,
      refillPeriodSeconds: 1,
      entitlements: ["api"],
      ...overrides,
    }),
    201,
  );
}

export interface TenantFixture {
  tenantId: string;
  slug: string;
  plan: PlanFixture;
  /** The first live key's plaintext and id. */
  key: string;
  keyId: string;
}

/** A tenant on its own plan (override plan fields with `plan`), with its first live key. */
export async function seedTenant(options: { plan?: Record<string, unknown> } = {}): Promise<TenantFixture> {
  const plan = await createPlan(options.plan);
  const slug = `t-${uniq()}`;
  const body = await expectJson<{ tenant: { id: string }; key: { id: string; key: string } }>(
    await admin("POST", "/admin/v1/tenants", { slug, name: `Tenant ${slug}`, planId: plan.id }),
    201,
  );
  return { tenantId: body.tenant.id, slug, plan, key: body.key.key, keyId: body.key.id };
}

/** Issues another key for a tenant through the admin API. */
export async function createKey(
  tenantId: string,
  input: Record<string, unknown> = {},
): Promise<{ id: string; key: string }> {
  return expectJson(await admin("POST", `/admin/v1/tenants/${tenantId}/keys`, input), 201);
}

export interface OriginCall {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** Requests the test origin received whose path contains `marker`. */
export async function originCalls(marker: string): Promise<OriginCall[]> {
  const res = await fetch(`${env.ORIGIN_URL}/__calls?contains=${encodeURIComponent(marker)}`);
  return (await res.json()) as OriginCall[];
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
