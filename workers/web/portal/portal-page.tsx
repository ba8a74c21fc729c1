/**
 * A signed-in portal page: the shell with the portal's navigation, the tenant's name and the
 * sign-out form. Every portal page renders through here.
 */
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../../env";
import { Page } from "../layout";
import { PORTAL_NAV } from "./nav";

export function portalPage(
  c: Context<AppEnv>,
  props: {
    title: string;
    current: string;
    who: string;
    scripts?: string[];
    styles?: string[];
    status?: number;
  },
  body: Child,
) {
  const csrf = c.var.web?.csrf ?? "";
  return c.html(
    <Page
      title={props.title}
      face="Portal"
      nav={PORTAL_NAV}
      current={props.current}
      who={props.who}
      signOut={{ action: "/portal/logout", csrf }}
      scripts={props.scripts}
      styles={props.styles}
    >
      {body}
    </Page>,
    (props.status ?? 200) as 200,
  );
}
