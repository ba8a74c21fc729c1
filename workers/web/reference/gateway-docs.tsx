/**
 * `/gateway/docs`: the reference of the gateway's whole own document (admin and tenant APIs) as one
 * page — no sign-in, no "try it" (admin operations take the admin token, which belongs in the
 * console or the CLI, not in a form), a curl command per operation. Its scripts and styles come
 * from `/_static/` like the portal's, so it renders offline and under the web faces' CSP.
 */
import { REFERENCE_STYLES, Reference } from "./reference";
import type { ReferenceView } from "./view-model";

/** The whole page for a view of the gateway's document; `baseUrl` is the gateway's origin. */
export function GatewayDocsPage(props: { view: ReferenceView; baseUrl: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.view.title} · API reference`}</title>
        <link rel="stylesheet" href="/_static/app.css" />
        {REFERENCE_STYLES.map((href) => (
          <link rel="stylesheet" href={href} />
        ))}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <span class="brand">API reference</span>
          <nav aria-label="Formats">
            <ul>
              <li>
                <a href="/gateway/openapi.json">OpenAPI document (JSON)</a>
              </li>
            </ul>
          </nav>
        </header>
        <main id="main">
          <h1>API reference</h1>
          <Reference view={props.view} baseUrl={props.baseUrl} tryIt={false} />
        </main>
      </body>
    </html>
  );
}
