/** The console's sections, in the order of its navigation. */
import type { NavItem } from "../layout";

export const CONSOLE_NAV: NavItem[] = [
  { href: "/console", label: "Tenants" },
  { href: "/console/endpoints", label: "Endpoints" },
  { href: "/console/reconciliation", label: "Reconciliation" },
  { href: "/console/dead-letters", label: "Dead letters" },
];
