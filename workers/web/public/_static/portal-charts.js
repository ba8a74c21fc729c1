// The portal overview's charts and live numbers. Without this script the page is complete: its
// server-rendered tables hold every number (and stay the screen-reader view). With it:
// - #traffic-chart gets two uPlot charts (requests with 4xx/5xx; latency p50/p95/p99), drawn from
//   the page's JSON twin (the URL in its data-src: /portal/overview.json with the page's query);
// - every 5 s while the page is visible, the twin is fetched again and the charts, the windows
//   table, the traffic table and the endpoints table are updated in place. Text only goes in through
//   textContent (never innerHTML), and a meter's width is a pct-N class (the CSP allows no style
//   attribute).
// Loaded after /_static/vendor/uPlot.iife.min.js (both deferred, in order), which defines uPlot.

(() => {
  const container = document.getElementById("traffic-chart");
  if (!container || typeof uPlot === "undefined") return;
  const src = container.getAttribute("data-src");
  if (!src) return;

  const REFRESH_MS = 5000;
  const numbers = new Intl.NumberFormat("en-US");
  const count = (n) => numbers.format(n);
  const ms = (n) => (n === null ? "—" : `${count(n)} ms`);
  const pct = (rate) => `${(rate * 100).toFixed(1)} %`;
  const when = (iso, granularity) =>
    granularity === "hour" ? `${iso.slice(0, 16).replace("T", " ")} UTC` : iso.slice(0, 10);

  let charts = null;
  let timer = null;

  function cell(tag, text, className) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (className) el.className = className;
    return el;
  }

  function columns(data) {
    const xs = data.series.map((p) => Date.parse(p.bucketStart) / 1000);
    return {
      traffic: [
        xs,
        data.series.map((p) => p.requests),
        data.series.map((p) => p.errors4xx),
        data.series.map((p) => p.errors5xx),
      ],
      latency: [
        xs,
        data.series.map((p) => p.p50),
        data.series.map((p) => p.p95),
        data.series.map((p) => p.p99),
      ],
    };
  }

  function chart(title, series, data, yLabel) {
    const box = document.createElement("div");
    box.appendChild(cell("h3", title));
    container.appendChild(box);
    return new uPlot(
      {
        width: Math.max(280, container.clientWidth - 16),
        height: 220,
        // The page's times are UTC; so are the charts'.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        scales: { x: { time: true } },
        axes: [{}, { label: yLabel }],
        series: [{}, ...series],
      },
      data,
      box,
    );
  }

  function draw(data) {
    const cols = columns(data);
    if (charts) {
      charts.traffic.setData(cols.traffic);
      charts.latency.setData(cols.latency);
      return;
    }
    charts = {
      traffic: chart(
        "Requests and errors",
        [
          { label: "Requests", stroke: "#2457c5", width: 2 },
          { label: "4xx", stroke: "#9a6200" },
          { label: "5xx", stroke: "#b3261e" },
        ],
        cols.traffic,
        "requests",
      ),
      latency: chart(
        "Latency",
        [
          { label: "p50", stroke: "#1d7a3e", value: (_, v) => ms(v) },
          { label: "p95", stroke: "#9a6200", value: (_, v) => ms(v) },
          { label: "p99", stroke: "#b3261e", value: (_, v) => ms(v) },
        ],
        cols.latency,
        "ms",
      ),
    };
  }

  function updateWindows(rows) {
    for (const w of rows) {
      const tr = document.querySelector(`#windows tr[data-window="${w.window}"]`);
      if (!tr) continue;
      const set = (field, text) => {
        const el = tr.querySelector(`[data-field="${field}"]`);
        if (el) el.textContent = text;
      };
      set("used", count(w.used));
      set("limit", w.limit === null ? "no limit" : count(w.limit));
      set("remaining", w.remaining === null ? "—" : count(w.remaining));
      set("resets", w.resets);
      set("percent", w.percent === null ? "—" : `${w.percent} %`);
      const bar = tr.querySelector(".meter > span");
      if (bar) bar.className = `pct-${w.percent ?? 0}`;
    }
  }

  function updateTraffic(data) {
    const body = document.querySelector("#traffic tbody");
    if (!body) return;
    const g = data.range.granularity;
    body.replaceChildren(
      ...data.series.map((p) => {
        const tr = document.createElement("tr");
        tr.setAttribute("data-bucket", p.bucketStart);
        const head = cell("th", when(p.bucketStart, g));
        head.setAttribute("scope", "row");
        tr.append(
          head,
          cell("td", count(p.requests), "num"),
          cell("td", count(p.errors4xx), "num"),
          cell("td", count(p.errors5xx), "num"),
          cell("td", ms(p.p50), "num"),
          cell("td", ms(p.p95), "num"),
          cell("td", ms(p.p99), "num"),
        );
        return tr;
      }),
    );
  }

  function updateEndpoints(endpoints) {
    const body = document.querySelector("#endpoints tbody");
    if (!body) return;
    if (endpoints.length === 0) {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell("td", "No requests in this range.", "muted");
      td.setAttribute("colspan", "6");
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(
      ...endpoints.map((e) => {
        const tr = document.createElement("tr");
        tr.setAttribute("data-route", e.route);
        const head = document.createElement("th");
        head.setAttribute("scope", "row");
        head.append(cell("code", e.route));
        const requests = cell("td", count(e.requests), "num");
        requests.setAttribute("data-requests", String(e.requests));
        const errors = cell("td", `${count(e.errors)} `, "num");
        errors.setAttribute("data-errors", String(e.errors));
        errors.append(cell("span", `(${count(e.errors4xx)} 4xx, ${count(e.errors5xx)} 5xx)`, "muted"));
        const p95 = cell("td", ms(e.p95), "num");
        p95.setAttribute("data-p95", e.p95 === null ? "" : String(e.p95));
        const units = cell("td", count(e.units), "num");
        units.setAttribute("data-units", String(e.units));
        tr.append(head, requests, errors, cell("td", pct(e.errorRate), "num"), p95, units);
        return tr;
      }),
    );
  }

  function stop(reason) {
    if (timer !== null) clearInterval(timer);
    timer = null;
    const note = document.querySelector("[data-updated]");
    if (note) note.textContent = reason;
  }

  async function refresh() {
    let data;
    try {
      // A lost session answers with a redirect to sign-in: treat it as the end of live updates.
      const res = await fetch(src, { headers: { accept: "application/json" }, redirect: "error" });
      if (!res.ok) return stop(`Live updates stopped (${res.status}). Reload the page.`);
      data = await res.json();
    } catch {
      return stop("Live updates stopped. Reload the page.");
    }
    draw(data);
    updateWindows(data.windowRows);
    updateTraffic(data);
    updateEndpoints(data.endpoints);
    const note = document.querySelector("[data-updated]");
    if (note) note.textContent = `As of ${data.generatedAt.slice(11, 19)} UTC.`;
  }

  refresh();
  timer = setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && timer !== null) refresh();
  });
  window.addEventListener("resize", () => {
    if (!charts) return;
    const width = Math.max(280, container.clientWidth - 16);
    charts.traffic.setSize({ width, height: 220 });
    charts.latency.setSize({ width, height: 220 });
  });
})();
