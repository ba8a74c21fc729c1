/** The portal's sections, in the order of its navigation. */
import type { NavItem } from "../layout";

export const PORTAL_NAV: NavItem[] = [
  { href: "/portal", label: "Overview" },
  { href: "/portal/usage", label: "Usage" },
  { href: "/portal/keys", label: "Keys" },
  { href: "/portal/webhooks", label: "Webhooks" },
  { href: "/portal/billing", label: "Billing" },
  { href: "/portal/docs", label: "Docs" },
];
