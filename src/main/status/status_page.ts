/**
 * The status page's HTML (main thread only): one self-contained document, no script or style from
 * anywhere but itself, that renders {@linkcode FleetSnapshot}s as they arrive by server-sent events
 * (`?stream`), and a cluster's recent history when its row is chosen. Its requests are relative, so
 * it works wherever the application mounts the handler.
 *
 * @module
 */

/** The page, with `title` escaped into it. */
export function statusPage(title: string): string {
  const safeTitle = title.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${safeTitle}</title>
<style>
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1d232a; background: #f6f7f9; }
  body { margin: 0; padding: 16px 24px; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  .totals { color: #5a6572; margin-bottom: 12px; }
  .totals b { color: #1d232a; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e7eaee; vertical-align: top; }
  th { font-weight: 600; color: #5a6572; font-size: 12px; text-transform: uppercase; }
  tr.row { cursor: pointer; }
  tr.row:hover, tr.row.chosen { background: #eef4ff; }
  .state { font-weight: 600; }
  .state.connected { color: #17803d; }
  .state.disconnected { color: #c02727; }
  .error { color: #c02727; font-size: 12px; }
  .muted { color: #5a6572; font-size: 12px; }
  .kind { display: inline-block; margin: 0 6px 4px 0; padding: 1px 8px; border-radius: 10px;
    font-size: 12px; border: 1px solid; }
  .kind.synced { border-color: #9fd3b0; background: #effaf3; }
  .kind.syncing { border-color: #c8d0da; background: #f3f5f8; }
  .kind.failing { border-color: #f0a3a3; background: #fdf0f0; color: #a01d1d; }
  .badge { font-size: 12px; padding: 1px 6px; border-radius: 4px; background: #eef1f5; }
  .badge.dedicated { background: #fff2d6; }
  #detail { margin-top: 16px; background: #fff; padding: 12px 16px; box-shadow: 0 1px 2px #0002; }
  #detail[hidden] { display: none; }
  #detail li { margin: 2px 0; }
  .live { float: right; font-size: 12px; color: #5a6572; }
  .live.off { color: #c02727; }
</style>
</head>
<body>
<span class="live" id="live">connecting…</span>
<h1>${safeTitle}</h1>
<div class="totals" id="totals"></div>
<table>
  <thead><tr>
    <th>Cluster</th><th>Connection</th><th>Health</th><th>Worker</th><th>Shard</th><th>Kinds</th>
  </tr></thead>
  <tbody id="clusters"></tbody>
</table>
<section id="detail" hidden>
  <h2 id="detail-title"></h2>
  <ol id="history"></ol>
</section>
<script>
"use strict";
let chosen = new URLSearchParams(location.search).get("cluster");
let last;
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
};
const ago = (s) => s === null ? "never" : s < 60 ? s.toFixed(0) + " s ago" :
  s < 3600 ? (s / 60).toFixed(0) + " min ago" : (s / 3600).toFixed(1) + " h ago";
function render(fleet) {
  last = fleet;
  const t = fleet.totals;
  document.getElementById("totals").replaceChildren(
    el("b", { textContent: t.connected + " of " + t.clusters }), " clusters connected · ",
    el("b", { textContent: String(t.failingKinds) }), " kinds failing · ",
    el("b", { textContent: String(t.dedicated) }), " in workers of their own · updated ",
    new Date(fleet.time).toLocaleTimeString(),
  );
  const rows = fleet.clusters.map((c) => {
    const kinds = c.kinds.map((k) => el("span", {
      class: "kind " + k.phase, "data-kind": k.kind, "data-phase": k.phase,
      title: k.phase === "failing"
        ? "failing for " + k.failingForSeconds + " s: " + (k.lastError || "")
        : "last heard " + ago(k.lastHeardSecondsAgo),
      textContent: k.kind.split(" ").pop() + " · " + k.objects + " · " + k.eventsPerSecond + "/s" +
        (k.phase === "synced" ? "" : " · " + k.phase),
    }));
    return el("tr", {
      class: "row" + (c.cluster === chosen ? " chosen" : ""),
      "data-cluster": c.cluster,
      "data-state": c.connected ? "connected" : "disconnected",
      "data-placement": c.placement || "",
      onclick: () => choose(c.cluster),
    },
      el("td", {}, c.cluster),
      el("td", {},
        el("span", { class: "state " + (c.connected ? "connected" : "disconnected"),
          textContent: c.connected ? "connected" : "disconnected" }),
        c.disconnectedBecause ? el("div", { class: "error", textContent: c.disconnectedBecause }) : "",
        c.lastConnectionError ? el("div", { class: "error", textContent: c.lastConnectionError }) : ""),
      el("td", {},
        c.consecutiveFailures + " failed in a row",
        el("div", { class: "muted", textContent: "last success " + ago(c.lastProbeSuccessSecondsAgo) })),
      el("td", {},
        c.placement ? el("span", { class: "badge " + c.placement, textContent: c.placement }) : "–",
        c.moves ? el("div", { class: "muted", textContent: c.moves + (c.moves === 1 ? " move" : " moves") }) : ""),
      el("td", {}, c.shard ? (c.shard.servedHere ? "here" : (c.shard.owner || "another replica")) : "–"),
      el("td", {}, ...kinds),
    );
  });
  document.getElementById("clusters").replaceChildren(...rows);
  showDetail();
}
function choose(cluster) {
  chosen = chosen === cluster ? null : cluster;
  const url = new URL(location.href);
  if (chosen) url.searchParams.set("cluster", chosen); else url.searchParams.delete("cluster");
  history.replaceState(null, "", url);
  if (last) render(last);
}
function showDetail() {
  const detail = document.getElementById("detail");
  const c = last && last.clusters.find((x) => x.cluster === chosen);
  detail.hidden = !c;
  if (!c) return;
  document.getElementById("detail-title").textContent = c.cluster + ": recent events";
  document.getElementById("history").replaceChildren(...[...c.history].reverse().map((h) =>
    el("li", { "data-history": h.kind },
      el("span", { class: "muted", textContent: new Date(h.time).toLocaleTimeString() + " " }),
      el("b", { textContent: h.kind + " " }), h.message)));
}
function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("?stream");
  source.onmessage = (event) => {
    live.textContent = "live";
    live.className = "live";
    render(JSON.parse(event.data));
  };
  source.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
}
listen();
</script>
</body>
</html>
`;
}
