// The console tenant page's usage chart. Without this script the page is complete: the hourly table
// below the chart holds every number (and stays the screen-reader view). With it, #usage-chart gets
// a uPlot chart of requests, 4xx and 5xx per hour, drawn from the element's data-series attribute
// (JSON written by the server: [[unix seconds, requests, 4xx, 5xx], …]). No fetch, no inline script.
// Loaded after /_static/vendor/uPlot.iife.min.js (both deferred, in order), which defines uPlot.

(() => {
  const container = document.getElementById("usage-chart");
  if (!container || typeof uPlot === "undefined") return;
  let points;
  try {
    points = JSON.parse(container.getAttribute("data-series") || "[]");
  } catch {
    return;
  }
  if (!Array.isArray(points) || points.length === 0) return;
  const column = (i) => points.map((p) => p[i]);
  new uPlot(
    {
      width: Math.max(280, container.clientWidth - 16),
      height: 220,
      // The page's times are UTC; so is the chart's.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      axes: [{}, { label: "requests" }],
      series: [
        {},
        { label: "Requests", stroke: "#2457c5" },
        { label: "4xx", stroke: "#b7791f" },
        { label: "5xx", stroke: "#b3261e" },
      ],
    },
    [column(0), column(1), column(2), column(3)],
    container,
  );
})();
