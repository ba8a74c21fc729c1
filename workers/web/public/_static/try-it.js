// "Try it" on the API reference (/portal/docs): each form.try-it sends its operation's request to
// this origin (the CSP allows no other) with the test key as `Authorization: Bearer`, and shows the
// status, the rate-limit headers and the body - as text, never as HTML.
// - Only test keys (gw_test_...) are sent: the sandbox is the point; a live key is refused here.
// - The key lives in the page; with "Remember for this tab" ticked, in sessionStorage too (gone when
//   the tab closes). One key field typed fills every form's.
// - Without JavaScript the forms stay hidden (a plain form would put the key in the URL); each
//   operation shows its curl command instead.
// - ASCII only: the file reads the same whatever charset it is served with.

(() => {
  const STORE = "gw-docs-test-key";
  const SHOWN_HEADERS =
    /^(ratelimit|ratelimit-policy|x-ratelimit-.*|retry-after|x-request-id|content-type|idempotent-replayed|deprecation|sunset|warning)$/i;
  const MAX_SHOWN = 100_000;
  const forms = Array.from(document.querySelectorAll("form.try-it"));
  if (forms.length === 0) return;

  const keyFields = () => Array.from(document.querySelectorAll("form.try-it input[name=key]"));
  const rememberBoxes = () => Array.from(document.querySelectorAll("form.try-it input[name=remember]"));

  function stored() {
    try {
      return sessionStorage.getItem(STORE) || "";
    } catch {
      return "";
    }
  }
  function store(key, remember) {
    try {
      if (remember && key) sessionStorage.setItem(STORE, key);
      else sessionStorage.removeItem(STORE);
    } catch {
      // Storage refused (private mode, a policy): the key simply stays in this page.
    }
  }

  const saved = stored();
  for (const form of forms) form.hidden = false;
  for (const field of keyFields()) field.value = saved;
  for (const box of rememberBoxes()) box.checked = saved !== "";

  document.addEventListener("input", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLInputElement) || !target.closest("form.try-it")) return;
    if (target.name === "key") {
      for (const field of keyFields()) if (field !== target) field.value = target.value;
      if (rememberBoxes()[0]?.checked) store(target.value, true);
    }
  });
  document.addEventListener("change", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLInputElement) || target.name !== "remember" || !target.closest("form.try-it"))
      return;
    for (const box of rememberBoxes()) box.checked = target.checked;
    store(target.form?.elements.namedItem("key")?.value || "", target.checked);
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("try-it")) return;
    event.preventDefault();
    void send(form);
  });

  /** Writes the outcome as text. */
  function show(form, text) {
    const out = form.querySelector(".try-output");
    if (out) out.textContent = text;
  }

  async function send(form) {
    const key = (form.elements.namedItem("key")?.value || "").trim();
    if (!key) return show(form, "Enter a test key (gw_test_...).");
    if (!key.startsWith("gw_test_")) {
      return show(
        form,
        key.startsWith("gw_live_")
          ? "That is a live key. Try it only sends test keys (gw_test_...): they act on the sandbox and are never billed."
          : "That is not a test key. Try it only sends test keys (gw_test_...).",
      );
    }
    const remember = form.elements.namedItem("remember");
    store(key, remember instanceof HTMLInputElement && remember.checked);

    const method = (form.dataset.method || "get").toUpperCase();
    let path = form.dataset.path || "/";
    const query = new URLSearchParams();
    const headers = new Headers({ authorization: `Bearer ${key}`, accept: "application/json, */*" });
    for (const input of form.querySelectorAll("input[data-in]")) {
      const value = input.value;
      const name = input.dataset.name || "";
      if (input.dataset.in === "path") {
        if (!value) return show(form, `Fill in the path parameter ${name}.`);
        path = path.split(`{${name}}`).join(encodeURIComponent(value));
        continue;
      }
      if (value === "") continue; // an optional parameter left empty is not sent
      if (input.dataset.in === "query") query.append(name, value);
      else if (input.dataset.in === "header") headers.set(name, value);
    }
    let body;
    const bodyField = form.elements.namedItem("body");
    if (
      bodyField instanceof HTMLTextAreaElement &&
      bodyField.value.trim() !== "" &&
      method !== "GET" &&
      method !== "HEAD"
    ) {
      body = bodyField.value;
      headers.set("content-type", "application/json");
    }
    const qs = query.toString();
    const url = `${path}${qs ? `?${qs}` : ""}`;
    // A document's path could read "//elsewhere/...": the key goes to this origin or nowhere (the CSP
    // would refuse the request too; this says why instead of failing).
    if (!url.startsWith("/") || new URL(url, location.origin).origin !== location.origin) {
      return show(form, "This operation's path is not on this site; it cannot be tried here.");
    }

    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    show(form, `${method} ${url} ...`);
    try {
      const res = await fetch(url, {
        method,
        headers,
        body,
        credentials: "omit",
        redirect: "manual",
        cache: "no-store",
      });
      const lines = [`${method} ${url}`, `HTTP ${res.status} ${res.statusText}`.trim()];
      res.headers.forEach((value, name) => {
        if (SHOWN_HEADERS.test(name)) lines.push(`${name}: ${value}`);
      });
      let text = await res.text();
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch {
        // Not JSON: shown as it came.
      }
      if (text.length > MAX_SHOWN)
        text = `${text.slice(0, MAX_SHOWN)}\n... (${text.length - MAX_SHOWN} more characters)`;
      show(form, `${lines.join("\n")}\n\n${text}`);
    } catch (error) {
      show(
        form,
        `${method} ${url}\nThe request failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      if (button) button.disabled = false;
    }
  }
})();
