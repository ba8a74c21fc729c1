/** The console's sections, in the order of its navigation. */
import type { NavItem } from "../layout";

export const CONSOLE_NAV: NavItem[] = [{ href: "/console", label: "Tenants" }];
