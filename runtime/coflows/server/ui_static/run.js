// The live DAG page of one run: draw it, then follow its event stream (no polling, no reload).
// On every (re)connection of the stream the run is fetched once, and the events that arrive
// meanwhile are applied after it, so nothing said while the stream was down is missed.
// window.coflowsDag exposes what is drawn (for the browser tests and the bench).

import { TERMINAL, clock, el, getJson, withKey } from "./api.js";
import { DagView } from "./dag.js";
import { COLORS } from "./states.js";
import { RunModel } from "./model.js";

const runId = decodeURIComponent(location.pathname.split("/").pop());
const runUrl = `/flows/runs/${encodeURIComponent(runId)}`;
const $ = (id) => document.getElementById(id);

const model = new RunModel();
const rows = new Map();  // node → <tr>
let view = null;
let selected = null;
let source = null;
let opens = 0;
let pendingRender = false;

const dag = {
  ready: false, live: false, opens: 0, timings: {}, loads: [],  // loads: "fetch" | "refetch" | "snapshot"
  state: (node) => model.tasks.get(node)?.state ?? null,
  task: (node) => structuredClone(model.tasks.get(node) ?? null),
  nodes: () => [...model.tasks.keys()],
  node: (node) => view?.describe(node) ?? null,
  position: (node) => view?.position(node) ?? null,
  history: () => model.history.slice(),
  run: () => model.run,
};
window.coflowsDag = dag;

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setRunState() {
  const r = model.run;
  $("title").textContent = `${r.name || "flow run"} · ${r.id}`;
  document.title = `coflows · ${r.name || r.id} (${r.state})`;
  $("run-state").textContent = r.state + (r.error ? `: ${r.error}` : "");
  $("run-state").dataset.state = r.state;
}

// -- the task table: one row per task, updated in place --------------------------------------
function fillRow(tr, t) {
  tr.dataset.state = t.state;
  const cells = [t.node, t.state, t.attempts, clock(t.started_at), clock(t.finished_at), seconds(t), t.ref];
  cells.forEach((text, i) => { tr.cells[i].textContent = text; });
  tr.cells[1].className = "state";
  tr.cells[1].dataset.state = t.state;
}

function seconds(t) {
  if (!t.started_at || !t.finished_at) return "";
  return ((new Date(t.finished_at) - new Date(t.started_at)) / 1000).toFixed(3);
}

function renderTable() {
  const body = $("tasks").tBodies[0];
  body.replaceChildren();
  rows.clear();
  for (const t of model.tasks.values()) {
    const tr = el("tr", { dataset: { node: t.node }, tabindex: "0", onclick: () => select(t.node),
      onkeydown: (e) => { if (e.key === "Enter") select(t.node); } },
    ...Array.from({ length: 7 }, () => el("td")));
    fillRow(tr, t);
    rows.set(t.node, tr);
    body.append(tr);
  }
}

// -- the details panel: opened by a tap on a node or a row; fetches the run for outputs ---------
function field(name, value, pre = false) {
  if (value == null || value === "") return [];
  const dd = el("dd", { dataset: { field: name } });
  if (pre) dd.append(el("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2)));
  else dd.textContent = typeof value === "string" ? value : JSON.stringify(value);
  return [el("dt", {}, name), dd];
}

function renderDetails() {
  const t = selected && model.tasks.get(selected);
  $("details").hidden = !t;
  if (!t) return;
  $("details").dataset.node = t.node;
  $("details").dataset.state = t.state;
  $("details-title").textContent = t.node;
  const items = view?.groups.get(t.node);
  const counts = items && items.reduce((c, i) => ({ ...c, [i.state]: (c[i.state] || 0) + 1 }), {});
  $("details-fields").replaceChildren(
    ...field("state", t.state), ...field("function", t.ref),
    ...field("attempts", `${t.attempts}` + (t.retries ? ` (retries allowed: ${t.retries})` : "")),
    ...field("started", t.started_at), ...field("finished", t.finished_at), ...field("seconds", seconds(t)),
    ...field("after", t.after?.length ? t.after.join(", ") : null), ...field("added by", t.added_by),
    ...field("items", items ? `${items.length}: ${JSON.stringify(counts)}` : null),
    ...field("retry at", t.retry_at), ...field("error", t.error, true), ...field("output", t.output, true),
    ...field("hints", t.hints, true), ...field("trace", t.trace, true),
  );
}

async function select(node) {
  selected = node;
  view?.select(node);
  for (const tr of rows.values()) tr.classList.toggle("selected", tr.dataset.node === node);
  renderDetails();
  try {  // outputs, times and traces are not in events: read the stored task
    load(await getJson(runUrl), "fetch");
  } catch (err) {
    showError(`could not read the run: ${err.message}`);
  }
}

// -- applying what the server says --------------------------------------------------------------
function load(run, how) {
  dag.loads.push(how);
  const structural = model.load(run, how);
  setRunState();
  if (structural || !view) scheduleRender();
  else {
    for (const t of model.tasks.values()) {
      view.update(model, t.node);
      if (rows.has(t.node)) fillRow(rows.get(t.node), t);
    }
  }
  renderDetails();
}

function apply(ev) {
  const { node, structural } = model.apply(ev);
  if (ev.type === "run") {
    setRunState();
    if (TERMINAL.has(ev.state)) finish();
    return;
  }
  if (structural) return scheduleRender();
  if (!pendingRender) {
    view.update(model, node);
    if (rows.has(node)) fillRow(rows.get(node), model.tasks.get(node));
  }
  if (node === selected) renderDetails();
}

function scheduleRender() {  // a burst of graph events (a map's items) is drawn once
  if (pendingRender) return;
  pendingRender = true;
  requestAnimationFrame(() => {
    pendingRender = false;
    const t0 = performance.now();
    view.render(model);
    dag.timings.layoutMs = performance.now() - t0;
    renderTable();
    renderDetails();
  });
}

// -- the event stream ---------------------------------------------------------------------------
function connect() {
  source = new EventSource(withKey(`${runUrl}/events`));
  let syncing = false;
  let buffer = [];
  const onMessage = (kind) => (msg) => {
    const data = JSON.parse(msg.data);
    if (kind === "snapshot") data.type = "snapshot";
    if (syncing) buffer.push(data);
    else dispatch(data);
  };
  for (const kind of ["snapshot", "run", "task", "graph"]) source.addEventListener(kind, onMessage(kind));
  source.onopen = async () => {
    opens += 1;
    dag.opens = opens;
    syncing = true;
    try {
      load(await getJson(runUrl), opens === 1 ? "fetch" : "refetch");
    } catch (err) {
      showError(`could not read the run: ${err.message}`);
    }
    syncing = false;
    const queued = buffer;
    buffer = [];
    queued.forEach(dispatch);
    if (TERMINAL.has(model.run.state)) finish();
    else setLive(true);  // connected and caught up
  };
  source.onerror = () => {
    if (TERMINAL.has(model.run?.state)) return finish();
    if (source.readyState === EventSource.CLOSED) {  // refused (an HTTP error): it will not retry
      setLive(false, "disconnected");
      return showError("the event stream was refused; reload the page to try again");
    }
    setLive(false);  // EventSource reconnects by itself; onopen then catches up
  };
}

function dispatch(data) {
  if (data.type === "snapshot") load(data, "snapshot");
  else apply(data);
}

function finish() {  // the run is over: the server ends the stream; stop it reconnecting
  if (source) {
    source.close();
    source = null;
    setLive(false, "ended");
    getJson(runUrl).then((run) => load(run, "fetch"), () => {});  // final outputs and times
  }
}

function setLive(on, text) {
  dag.live = on;
  $("live").dataset.live = on ? "live" : text || "reconnecting";
  $("live").textContent = on ? "● live" : text || "reconnecting…";
}

function legend() {
  $("legend").replaceChildren(...Object.entries(COLORS).map(([s, c]) =>
    el("span", { class: "swatch", style: `--c: ${c}` }, s)));
}

async function main() {
  legend();
  $("back").href = withKey("/ui/flows");
  $("close-details").addEventListener("click", () => { selected = null; view?.select(null); renderDetails(); });
  const t0 = performance.now();
  let run;
  try {
    run = await getJson(runUrl);
  } catch (err) {
    return showError(`could not read run ${runId}: ${err.message}`);
  }
  dag.timings.fetchMs = performance.now() - t0;
  view = new DagView($("graph"), select);
  model.load(run, "fetch");
  dag.loads.push("fetch");
  setRunState();
  const t1 = performance.now();
  view.render(model);
  dag.timings.layoutMs = performance.now() - t1;
  Object.assign(dag.timings, view.timings);
  renderTable();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  dag.timings.readyMs = performance.now();  // since navigation started
  dag.ready = true;
  if (TERMINAL.has(run.state)) setLive(false, "ended");
  else connect();
}

main();
