/**
 * The page shell of both web faces: head (one stylesheet, one deferred script, both from
 * `/_static/`, so the CSP allows no inline code and nothing from another origin), a header with the
 * face's navigation and a sign-out form, and the page's content. Every string here and in the pages
 * is escaped by hono's JSX; `raw()` is never used on anything a tenant or operator typed.
 */
import { raw } from "hono/html";
import type { Child } from "hono/jsx";

/** One entry of a face's navigation. */
export interface NavItem {
  href: string;
  label: string;
}

export interface PageProps {
  /** The document title (the face's name is appended). */
  title: string;
  face: "Portal" | "Console";
  nav: NavItem[];
  /** The nav entry to mark as the current page. */
  current?: string;
  /** Who is signed in, shown in the header (tenant name, or "Operator"). */
  who?: string;
  /** Present when signed in: the sign-out form's action and CSRF value. */
  signOut?: { action: string; csrf: string };
  /** Extra scripts of this page, from `/_static/` (e.g. a chart). */
  scripts?: string[];
  /** Extra stylesheets of this page, from `/_static/`. */
  styles?: string[];
  children?: Child;
}

export function Page(props: PageProps) {
  return (
    <>
      {/* A constant, never input: without it browsers render the page in quirks mode. */}
      {raw("<!doctype html>")}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${props.title} · ${props.face}`}</title>
          <link rel="icon" href="/_static/favicon.svg" type="image/svg+xml" />
          <link rel="stylesheet" href="/_static/app.css" />
          {props.styles?.map((href) => (
            <link rel="stylesheet" href={href} />
          ))}
          <script src="/_static/app.js" defer />
          {props.scripts?.map((src) => (
            <script src={src} defer />
          ))}
        </head>
        <body>
          <a class="skip" href="#main">
            Skip to content
          </a>
          <header class="top">
            <span class="brand">{props.face}</span>
            {props.nav.length > 0 && (
              <nav aria-label={`${props.face} sections`}>
                <ul>
                  {props.nav.map((item) => (
                    <li>
                      <a href={item.href} aria-current={item.href === props.current ? "page" : undefined}>
                        {item.label}
                      </a>
                    </li>
                  ))}
                </ul>
              </nav>
            )}
            {props.signOut && (
              <form method="post" action={props.signOut.action} class="signout">
                {props.who && <span class="who">{props.who}</span>}
                <input type="hidden" name="_csrf" value={props.signOut.csrf} />
                <button type="submit" class="link">
                  Sign out
                </button>
              </form>
            )}
          </header>
          <main id="main">
            <h1>{props.title}</h1>
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

/** A column of `TableHead`: its label, or its label and that it holds numbers (right-aligned). */
export type Column = string | { label: string; num: true };

/** A numeric column of `TableHead`. */
export const num = (label: string): Column => ({ label, num: true });

/** A table's header row, one `<th scope="col">` per column. */
export function TableHead(props: { columns: Column[] }) {
  return (
    <thead>
      <tr>
        {props.columns.map((c) =>
          typeof c === "string" ? (
            <th scope="col">{c}</th>
          ) : (
            <th scope="col" class="num">
              {c.label}
            </th>
          ),
        )}
      </tr>
    </thead>
  );
}

/** The hidden CSRF field every state-changing form carries. */
export const CsrfField = (props: { csrf: string }) => <input type="hidden" name="_csrf" value={props.csrf} />;

/**
 * One button that posts: an inline form with the CSRF field, optional hidden fields, and an optional
 * confirmation (`data-confirm`, asked by app.js; without JavaScript the button posts at once).
 */
export function PostButton(props: {
  action: string;
  csrf: string;
  label: string;
  fields?: Record<string, string>;
  confirm?: string;
  danger?: boolean;
}) {
  return (
    <form method="post" action={props.action} class="inline" data-confirm={props.confirm}>
      <CsrfField csrf={props.csrf} />
      {Object.entries(props.fields ?? {}).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <button type="submit" class={props.danger ? "danger" : undefined}>
        {props.label}
      </button>
    </form>
  );
}

/** A notice above a page's content: the outcome of the form that led here. */
export function Notice(props: { kind: "ok" | "error"; children?: Child }) {
  return (
    <p class={`notice notice-${props.kind}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </p>
  );
}
