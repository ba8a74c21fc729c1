/**
 * The operator's own API reference (`PORTAL_OPENAPI_URL`), fetched by the Worker and turned into a
 * view: at most 1 MiB, within 5 s, JSON only, cached per isolate (5 minutes when it worked, 30 s
 * when it did not — so an unreachable document costs one tenant a short wait, not every page view).
 * Every failure is a value with a sentence for the page, never a throw: the portal shows a Notice.
 */
import { log } from "../../log";
import { buildReference, NotOpenApiError, type ReferenceView } from "./view-model";

/** Largest document read; a bigger one is refused before its body is read whole. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
export const FETCH_TIMEOUT_MS = 5_000;
const CACHE_OK_MS = 5 * 60_000;
const CACHE_FAILED_MS = 30_000;

export type OperatorReference = { ok: true; view: ReferenceView } | { ok: false; reason: string };

export interface LoadOptions {
  fetch?: typeof fetch;
  timeoutMs?: number;
  now?: number;
}

/**
 * Per isolate, by URL. The view is cached rather than the document: building it is the costly part,
 * and the portal's operation ids are built first from it (the tenant API's come after).
 */
const cache = new Map<string, { until: number; result: OperatorReference }>();

/** The operator's reference at `url`, from this isolate's cache when fresh. */
export async function operatorReference(url: string, options: LoadOptions = {}): Promise<OperatorReference> {
  const now = options.now ?? Date.now();
  const hit = cache.get(url);
  if (hit && hit.until > now) return hit.result;
  const result = await load(url, options);
  if (!result.ok) log.warn("portal openapi document unusable", { url, error: result.reason });
  cache.set(url, { until: now + (result.ok ? CACHE_OK_MS : CACHE_FAILED_MS), result });
  return result;
}

async function load(url: string, options: LoadOptions): Promise<OperatorReference> {
  const doFetch = options.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(options.timeoutMs ?? FETCH_TIMEOUT_MS),
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return failed(timedOut ? "did not answer in time" : "could not be reached");
  }
  if (!res.ok) {
    await res.body?.cancel();
    return failed(`answered HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get("content-length") ?? Number.NaN);
  if (declared > MAX_DOCUMENT_BYTES) {
    await res.body?.cancel();
    return failed("is larger than 1 MiB");
  }
  const body = await readCapped(res, MAX_DOCUMENT_BYTES);
  if (body === "too large") return failed("is larger than 1 MiB");
  if (body === "broken") return failed("could not be read (the connection broke)");
  let doc: unknown;
  try {
    doc = JSON.parse(body.text);
  } catch {
    return failed("is not valid JSON (YAML is not read: publish the JSON form)");
  }
  try {
    return { ok: true, view: buildReference(doc) };
  } catch (error) {
    if (error instanceof NotOpenApiError) return failed(error.message.replace(/^The document /, ""));
    throw error;
  }
}

const failed = (what: string): OperatorReference => ({
  ok: false,
  reason: `The provider's API reference ${what.replace(/\.$/, "")}.`,
});

/** The body as text, or "too large" as soon as it passes `limit` bytes (a missing Content-Length proves nothing). */
async function readCapped(res: Response, limit: number): Promise<{ text: string } | "too large" | "broken"> {
  if (!res.body) return { text: "" };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let step: ReadableStreamReadResult<Uint8Array>;
    try {
      step = await reader.read();
    } catch {
      return "broken";
    }
    if (step.done) break;
    size += step.value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return "too large";
    }
    chunks.push(step.value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return { text: new TextDecoder().decode(bytes) };
}
