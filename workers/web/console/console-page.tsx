/** A signed-in console page: the shell with the console's navigation and the sign-out form. */
import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { AppEnv } from "../../env";
import { Page } from "../layout";
import { CONSOLE_NAV } from "./nav";

export function consolePage(
  c: Context<AppEnv>,
  props: { title: string; current: string; scripts?: string[]; styles?: string[]; status?: number },
  body: Child,
) {
  const csrf = c.var.web?.csrf ?? "";
  return c.html(
    <Page
      title={props.title}
      face="Console"
      nav={CONSOLE_NAV}
      current={props.current}
      who="Operator"
      signOut={{ action: "/console/logout", csrf }}
      scripts={props.scripts}
      styles={props.styles}
    >
      {body}
    </Page>,
    (props.status ?? 200) as 200,
  );
}
