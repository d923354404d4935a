// The list of runs: read once, then kept current from the server's event stream of all runs.
// A run's state changes in place; a new run, or task progress, reads the list again (at most
// once a second, only when something happened).

import { el, getJson, withKey } from "./api.js";
import { COLORS } from "./states.js";

const $ = (id) => document.getElementById(id);
const rows = new Map();  // run id → <tr>
let refreshTimer = null;

function countsBar(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
  const bar = el("span", { class: "bar", title: JSON.stringify(counts) });
  for (const [state, n] of Object.entries(counts)) {
    bar.append(el("span", { style: `flex: ${n / total}; background: ${COLORS[state] || "#eee"}` }));
  }
  const text = Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(", ");
  return [bar, el("span", { class: "counts" }, text)];
}

function row(r) {
  const link = el("a", { href: withKey(`/ui/flows/runs/${encodeURIComponent(r.id)}`) }, r.id);
  return el("tr", { dataset: { run: r.id, state: r.state } },
    el("td", {}, link), el("td", {}, r.name || ""), el("td", { class: "state", dataset: { state: r.state } }, r.state),
    el("td", {}, ...countsBar(r.counts || {})), el("td", {}, r.created_at || ""), el("td", {}, r.finished_at || ""));
}

async function refresh() {
  refreshTimer = null;
  try {
    const runs = await getJson("/flows/runs?limit=200");
    const body = $("runs").tBodies[0];
    rows.clear();
    body.replaceChildren(...runs.map((r) => { const tr = row(r); rows.set(r.id, tr); return tr; }));
    $("empty").hidden = runs.length > 0;
    $("error").hidden = true;
  } catch (err) {
    $("error").textContent = `could not list runs: ${err.message}`;
    $("error").hidden = false;
  }
}

function later() {
  if (refreshTimer === null) refreshTimer = setTimeout(refresh, 1000);
}

function connect() {
  const source = new EventSource(withKey("/flows/events"));
  source.onopen = () => { setLive(true); refresh(); };  // (re)connected: catch up once
  source.onerror = () => setLive(false);
  source.addEventListener("run", (msg) => {
    const ev = JSON.parse(msg.data);
    const tr = rows.get(ev.run_id);
    if (!tr) return later();
    tr.dataset.state = ev.state;
    tr.cells[2].textContent = ev.state;
    tr.cells[2].dataset.state = ev.state;
    later();  // counts and times
  });
  for (const kind of ["task", "graph"]) source.addEventListener(kind, later);
}

function setLive(on) {
  $("live").dataset.live = on ? "live" : "reconnecting";
  $("live").textContent = on ? "● live" : "reconnecting…";
}

refresh().then(connect);
