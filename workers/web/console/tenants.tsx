/** `GET /console`: the operator's tenants. */
import { desc } from "drizzle-orm";
import type { Hono } from "hono";
import { tenants } from "../../../schema";
import type { AppEnv } from "../../env";
import { consolePage } from "./console-page";

export function registerConsoleTenants(pages: Hono<AppEnv>): void {
  pages.get("/", async (c) => {
    const rows = await c.var.db.select().from(tenants).orderBy(desc(tenants.createdAt)).limit(100);
    return consolePage(
      c,
      { title: "Tenants", current: "/console" },
      <table>
        <thead>
          <tr>
            <th scope="col">Tenant</th>
            <th scope="col">Slug</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((t) => (
            <tr>
              <td>{t.name}</td>
              <td>{t.slug}</td>
              <td>{t.status}</td>
            </tr>
          ))}
        </tbody>
      </table>,
    );
  });
}
