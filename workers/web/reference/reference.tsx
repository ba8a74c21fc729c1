/**
 * The API reference, server-rendered from a view (view-model.ts): a table of contents, then per tag
 * the operations — method badge, path, summary, description (as text), parameters, request body,
 * responses with their schemas, deprecated marks, a curl command — and, where the page asks for it,
 * a "try it" form that `/_static/try-it.js` drives (hidden without JavaScript: the curl command is
 * the no-JS way, and a plain form would put the key in the URL).
 *
 * DOM hooks the browser tests drive: `section.op#op-<method>-<path slug>`, `form.try-it` with an
 * input named `key`, `pre.try-output`.
 */
import type { Child } from "hono/jsx";
import { TableHead } from "../layout";
import {
  type ContentView,
  curlCommand,
  type OperationView,
  type ParameterView,
  type ReferenceView,
  type SchemaView,
} from "./view-model";

/** The page's own assets (with `/_static/app.css`). */
export const REFERENCE_STYLES = ["/_static/reference.css"];
export const TRY_IT_SCRIPTS = ["/_static/try-it.js"];

export interface ReferenceProps {
  view: ReferenceView;
  /** Where curl (and "try it") send requests: the gateway's origin. */
  baseUrl: string;
  /** Render a "try it" form per operation. */
  tryIt: boolean;
}

/** One document's reference (under the page's h1): title, description, contents, tag groups. */
export function Reference(props: ReferenceProps) {
  const { view } = props;
  return (
    <div class="reference">
      <h2>
        {view.title} {view.version && <span class="muted">{view.version}</span>}
      </h2>
      {view.description && <Prose text={view.description} />}
      {view.truncated && (
        <p class="notice notice-error" role="status">
          This reference is too large to show whole; some operations or schemas are cut short.
        </p>
      )}
      <Contents view={view} />
      {view.groups.map((group) => (
        <section class="tag-group">
          <h3>{group.name}</h3>
          {group.description && <Prose text={group.description} />}
          {group.operations.map((op) => (
            <Operation op={op} baseUrl={props.baseUrl} tryIt={props.tryIt} />
          ))}
        </section>
      ))}
      {view.webhooks.length > 0 && (
        <section class="tag-group">
          <h3>Webhooks</h3>
          <Prose text="Requests the API sends to endpoints you register, one per event type." />
          {view.webhooks.map((op) => (
            <Operation op={op} baseUrl={props.baseUrl} tryIt={false} webhook />
          ))}
        </section>
      )}
    </div>
  );
}

function Contents(props: { view: ReferenceView }) {
  return (
    <nav class="card toc" aria-label={`${props.view.title}: operations`}>
      {props.view.groups.map((group) => (
        <details open>
          <summary>{group.name}</summary>
          <ul>
            {group.operations.map((op) => (
              <li>
                <a href={`#${op.id}`}>
                  <MethodBadge method={op.method} /> <code>{op.path}</code>
                  {op.summary && ` — ${op.summary}`}
                </a>
              </li>
            ))}
          </ul>
        </details>
      ))}
      {props.view.webhooks.length > 0 && (
        <details open>
          <summary>Webhooks</summary>
          <ul>
            {props.view.webhooks.map((op) => (
              <li>
                <a href={`#${op.id}`}>
                  <MethodBadge method={op.method} /> <code>{op.path}</code>
                  {op.summary && ` — ${op.summary}`}
                </a>
              </li>
            ))}
          </ul>
        </details>
      )}
    </nav>
  );
}

/** Descriptions are Markdown in most documents; shown as text, one paragraph per blank line. */
function Prose(props: { text: string }) {
  return (
    <div class="prose">
      {props.text.split(/\n\s*\n/).map((para) => (
        <p>{para}</p>
      ))}
    </div>
  );
}

function MethodBadge(props: { method: string }) {
  return <span class={`method method-${props.method}`}>{props.method.toUpperCase()}</span>;
}

/** An operation of the API, or (`webhook`) a request the API sends: no curl command then. */
function Operation(props: { op: OperationView; baseUrl: string; tryIt: boolean; webhook?: boolean }) {
  const { op } = props;
  // A named schema is spelled out once per operation (the same Problem under 400, 401, 403 and 404
  // would otherwise be most of the page).
  const shown = new Set<string>();
  return (
    <section class={op.deprecated ? "op card deprecated" : "op card"} id={op.id}>
      <h4>
        <MethodBadge method={op.method} /> <code class="op-path">{op.path}</code>
        {op.deprecated && <span class="badge badge-deprecated">Deprecated</span>}
      </h4>
      {op.summary && <p class="op-summary">{op.summary}</p>}
      {op.description && <Prose text={op.description} />}
      {op.parameters.length > 0 && <Parameters params={op.parameters} />}
      {op.requestBody && (
        <div class="op-part">
          <h5>Request body {op.requestBody.required ? <span class="req">required</span> : "(optional)"}</h5>
          {op.requestBody.description && <Prose text={op.requestBody.description} />}
          <MediaList contents={op.requestBody.contents} shown={shown} />
        </div>
      )}
      {op.responses.length > 0 && (
        <div class="op-part">
          <h5>Responses</h5>
          <dl class="responses">
            {op.responses.map((r) => (
              <>
                <dt>
                  <span class={`status status-${r.status.charAt(0)}`}>{r.status}</span> {r.description}
                </dt>
                <dd>
                  <MediaList contents={r.contents} shown={shown} />
                </dd>
              </>
            ))}
          </dl>
        </div>
      )}
      {!props.webhook && (
        <details class="op-part curl">
          <summary>curl</summary>
          <pre>
            <code>{curlCommand(op, props.baseUrl)}</code>
          </pre>
        </details>
      )}
      {props.tryIt && <TryIt op={op} />}
    </section>
  );
}

function Parameters(props: { params: ParameterView[] }) {
  return (
    <div class="op-part">
      <h5>Parameters</h5>
      <div class="table-wrap">
        <table>
          <TableHead columns={["Name", "In", "Type", "Description"]} />
          <tbody>
            {props.params.map((p) => (
              <tr>
                <td>
                  <code>{p.name}</code>
                  {p.required && <span class="req"> required</span>}
                  {p.deprecated && <span class="badge badge-deprecated">Deprecated</span>}
                </td>
                <td>{p.in}</td>
                <td>
                  <TypeLine schema={p.schema} />
                </td>
                <td>{p.description || p.schema.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

/** The named schemas already spelled out in this operation. */
type Shown = Set<string>;

function MediaList(props: { contents: ContentView[]; shown: Shown }) {
  return (
    <>
      {props.contents.map((c) => (
        <div class="media">
          <span class="muted">{c.mediaType}</span>
          {c.schema && <Schema schema={c.schema} shown={props.shown} />}
        </div>
      ))}
    </>
  );
}

/** `string (date-time), nullable, one of "a", "b", default "a"` — a schema's one-line summary. */
function TypeLine(props: { schema: SchemaView }) {
  const s = props.schema;
  const notes: string[] = [];
  if (s.nullable) notes.push("nullable");
  if (s.enum) notes.push(`one of ${s.enum.join(", ")}`);
  if (s.defaultValue !== undefined) notes.push(`default ${s.defaultValue}`);
  return (
    <span class="type">
      <code>
        {s.type === "array" && s.items ? `array of ${s.items.ref ?? s.items.type}` : s.type}
        {s.format && ` (${s.format})`}
      </code>
      {s.ref && s.type !== s.ref && <span class="muted"> {s.ref}</span>}
      {notes.length > 0 && <span class="muted"> · {notes.join(" · ")}</span>}
      {s.deprecated && <span class="badge badge-deprecated">Deprecated</span>}
      {s.cycle && <span class="muted"> (recursive, see above)</span>}
      {s.truncated && <span class="muted"> …</span>}
      {s.unresolved && <span class="muted"> (unresolved {s.unresolved})</span>}
    </span>
  );
}

/** A schema as a nested list of members (objects), item type (arrays) and alternatives. */
function Schema(props: { schema: SchemaView; shown: Shown }): Child {
  const s = props.schema;
  const inner = s.type === "array" && s.items ? s.items : s;
  return (
    <div class="schema">
      <TypeLine schema={s} />
      {s.description && <p class="schema-description">{s.description}</p>}
      <Members schema={inner} shown={props.shown} />
    </div>
  );
}

function Members(props: { schema: SchemaView; shown: Shown }): Child {
  const s = props.schema;
  const hasMembers = (s.properties?.length ?? 0) > 0 || s.variants !== undefined;
  if (!hasMembers) return null;
  if (s.ref && props.shown.has(s.ref)) return <p class="muted schema-description">{`${s.ref}: as above.`}</p>;
  if (s.ref) props.shown.add(s.ref);
  return (
    <>
      {s.properties && s.properties.length > 0 && (
        <ul class="members">
          {s.properties.map((p) => (
            <li>
              <code class="member-name">{p.name}</code>
              {p.required && <span class="req"> required</span>} <TypeLine schema={p.schema} />
              {p.schema.description && <p class="schema-description">{p.schema.description}</p>}
              <Members
                schema={p.schema.type === "array" && p.schema.items ? p.schema.items : p.schema}
                shown={props.shown}
              />
            </li>
          ))}
        </ul>
      )}
      {s.variants && (
        <ul class="members variants">
          {s.variants.schemas.map((v) => (
            <li>
              <span class="muted">{s.variants?.kind === "allOf" ? "and" : "or"} </span>
              <Schema schema={v} shown={props.shown} />
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/**
 * The "try it" form. The key is a password field for a TEST key (try-it.js refuses anything else:
 * the sandbox is the point); parameters carry `data-in` / `data-name` for the script.
 */
function TryIt(props: { op: OperationView }) {
  const { op } = props;
  const inputs = op.parameters.filter((p) => p.in === "path" || p.in === "query" || p.in === "header");
  const safe = op.method === "get" || op.method === "head";
  return (
    <form class="try-it" hidden data-method={op.method} data-path={op.path}>
      <h5>Try it</h5>
      {!safe && (
        <p class="notice notice-error try-warning">
          This sends a real {op.method.toUpperCase()} request with your test key: it changes your sandbox
          data.
        </p>
      )}
      <label>
        Test key
        <input
          type="password"
          name="key"
          autocomplete="off"
          spellcheck={false}
          placeholder="gw_test_…"
          required
        />
      </label>
      <label class="check">
        <input type="checkbox" name="remember" /> Remember for this tab
      </label>
      {inputs.map((p) => (
        <label>
          {p.name} <span class="muted">({p.in})</span>
          {p.required && <span class="req"> required</span>}
          <input
            type="text"
            name={`${p.in}.${p.name}`}
            data-in={p.in}
            data-name={p.name}
            required={p.required}
          />
        </label>
      ))}
      {op.requestBody && !safe && (
        <label>
          Body (JSON)
          <textarea name="body" rows={6} spellcheck={false}>
            {op.requestBody.example ?? ""}
          </textarea>
        </label>
      )}
      <button type="submit" class="primary">
        Send request
      </button>
      <pre class="try-output" aria-live="polite" />
    </form>
  );
}
