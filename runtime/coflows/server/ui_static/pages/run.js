// The live DAG page of one flow run: Preact draws the frame (header, details panel, task table);
// a RunFollower reads the run, follows its event stream (no polling, no reload) and drives the
// cytoscape/dagre drawing (flows/dag.js) in a container Preact leaves alone. On every
// (re)connection of the stream the run is read once and the events that arrived meanwhile are
// applied after it, so nothing said while the stream was down is missed.
// window.coflowsDag exposes what is drawn (for the browser tests and bench/flows_page.py).
import { html, Page, Link, useEffect, useMemo, useRef, useState } from "../lib/ui.js";
import * as api from "../lib/api.js";
import { Component } from "preact";
import { DagView } from "../flows/dag.js";
import { RunModel } from "../flows/model.js";
import { COLORS, TERMINAL } from "../flows/states.js";
import { CountsBar, Live, State, clock, flowsCss, seconds } from "../flows/common.js";

/** Everything that is not drawn by Preact: the model, the stream, the canvas; `changed()` re-renders. */
class RunFollower {
  constructor(runId, changed) {
    this.runId = runId;
    this.url = `/flows/runs/${api.enc(runId)}`;
    this.changed = changed;
    this.model = new RunModel();
    this.view = null;
    this.selected = null;
    this.source = null;
    this.pendingRender = false;
    this.live = "connecting";
    this.error = null;
    this.notFound = false;
    this.stopped = false;
    const model = this.model;
    this.dag = {
      ready: false, live: false, opens: 0, timings: {}, loads: [],  // loads: "fetch" | "refetch" | "snapshot"
      state: (node) => model.tasks.get(node)?.state ?? null,
      task: (node) => structuredClone(model.tasks.get(node) ?? null),
      nodes: () => [...model.tasks.keys()],
      node: (node) => this.view?.describe(node) ?? null,
      position: (node) => this.view?.position(node) ?? null,
      history: () => model.history.slice(),
      run: () => model.run,
    };
    window.coflowsDag = this.dag;
  }

  /** Read the run, draw it into `container`, then follow its events (unless it is over). */
  async start(container) {
    const t0 = performance.now();
    let run;
    try {
      run = await api.get(this.url);
    } catch (err) {
      if (this.stopped) return;
      if (err.status === 404) this.notFound = true;
      else this.error = `could not read run ${this.runId}: ${err.message}`;
      return this.changed();
    }
    if (this.stopped) return;
    this.dag.timings.fetchMs = performance.now() - t0;
    this.view = new DagView(container, (node) => this.select(node));
    this.model.load(run, "fetch");
    this.dag.loads.push("fetch");
    const t1 = performance.now();
    this.view.render(this.model);
    this.dag.timings.layoutMs = performance.now() - t1;
    Object.assign(this.dag.timings, this.view.timings);
    this.changed();  // Preact draws the header and the table (a microtask: before the frames below)
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    if (this.stopped) return;
    this.dag.timings.readyMs = performance.now();  // since navigation started
    this.dag.ready = true;
    if (TERMINAL.has(run.state)) this.setLive(false, "ended");
    else this.connect();
  }

  /** The page is left: close the stream, free the canvas. */
  stop() {
    this.stopped = true;
    this.source?.close();
    this.source = null;
    this.view?.destroy();
    if (window.coflowsDag === this.dag) delete window.coflowsDag;
  }

  /** A node was tapped or a row chosen: open the details panel, then read the stored task (outputs). */
  async select(node) {
    this.selected = node;
    this.view?.select(node);
    this.changed();
    if (node === null) return;
    try {  // outputs, times and traces are not in events: read the stored task
      this.load(await api.get(this.url), "fetch");
    } catch (err) {
      this.showError(`could not read the run: ${err.message}`);
    }
  }

  showError(message) {
    this.error = message;
    this.changed();
  }

  // -- applying what the server says ------------------------------------------------------------
  load(run, how) {
    if (this.stopped) return;
    this.dag.loads.push(how);
    const structural = this.model.load(run, how);
    if (structural || !this.view) this.scheduleRender();
    else for (const t of this.model.tasks.values()) this.view.update(this.model, t.node);
    this.changed();
  }

  apply(ev) {
    const { node, structural } = this.model.apply(ev);
    this.changed();
    if (ev.type === "run") {
      if (TERMINAL.has(ev.state)) this.finish();
      return;
    }
    if (structural) return this.scheduleRender();
    if (!this.pendingRender) this.view.update(this.model, node);
  }

  scheduleRender() {  // a burst of graph events (a map's items) is drawn once
    if (this.pendingRender || !this.view) return;
    this.pendingRender = true;
    requestAnimationFrame(() => {
      this.pendingRender = false;
      if (this.stopped) return;
      const t0 = performance.now();
      this.view.render(this.model);
      if (this.selected) this.view.select(this.selected);
      this.dag.timings.layoutMs = performance.now() - t0;
      this.changed();
    });
  }

  // -- the event stream -------------------------------------------------------------------------
  connect() {
    const source = new EventSource(api.withKey(`${this.url}/events`));
    this.source = source;
    let syncing = false;
    let buffer = [];
    const onMessage = (kind) => (msg) => {
      const data = JSON.parse(msg.data);
      if (kind === "snapshot") data.type = "snapshot";
      if (syncing) buffer.push(data);
      else this.dispatch(data);
    };
    for (const kind of ["snapshot", "run", "task", "graph"]) source.addEventListener(kind, onMessage(kind));
    source.onopen = async () => {
      this.dag.opens += 1;
      syncing = true;
      try {
        this.load(await api.get(this.url), this.dag.opens === 1 ? "fetch" : "refetch");
      } catch (err) {
        this.showError(`could not read the run: ${err.message}`);
      }
      syncing = false;
      const queued = buffer;
      buffer = [];
      queued.forEach((d) => this.dispatch(d));
      if (TERMINAL.has(this.model.run.state)) this.finish();
      else if (this.source === source) this.setLive(true);  // connected and caught up
    };
    source.onerror = () => {
      if (this.source !== source) return;
      if (TERMINAL.has(this.model.run?.state)) return this.finish();
      if (source.readyState === EventSource.CLOSED) {  // refused (an HTTP error): it will not retry
        this.setLive(false, "disconnected");
        return this.showError("the event stream was refused; reload the page to try again");
      }
      this.setLive(false, "reconnecting");  // EventSource reconnects by itself; onopen then catches up
    };
  }

  dispatch(data) {
    if (this.stopped) return;
    if (data.type === "snapshot") this.load(data, "snapshot");
    else this.apply(data);
  }

  finish() {  // the run is over: the server ends the stream; stop it reconnecting
    if (!this.source) return;
    this.source.close();
    this.source = null;
    this.setLive(false, "ended");
    api.get(this.url).then((run) => this.load(run, "fetch"), () => {});  // final outputs and times
  }

  setLive(on, text) {
    this.dag.live = on;
    this.live = on ? "live" : text;
    this.changed();
  }
}

// -- what Preact draws ----------------------------------------------------------------------------
function Field({ name, value, pre = false }) {
  if (value == null || value === "") return null;
  const text = typeof value === "string" ? value : pre ? JSON.stringify(value, null, 2) : JSON.stringify(value);
  return html`<dt>${name}</dt><dd data-field=${name}>${pre ? html`<pre>${text}</pre>` : text}</dd>`;
}

function Details({ follower, onClose }) {
  const t = follower.selected && follower.model.tasks.get(follower.selected);
  if (!t) return null;
  const items = follower.view?.groups.get(t.node);
  const counts = items && items.reduce((c, i) => ({ ...c, [i.state]: (c[i.state] || 0) + 1 }), {});
  return html`<aside id="details" data-node=${t.node} data-state=${t.state} aria-labelledby="details-title">
    <button id="close-details" type="button" aria-label="Close the details" onClick=${onClose}>×</button>
    <h2 id="details-title">${t.node}</h2>
    <dl>
      <${Field} name="state" value=${t.state} />
      <${Field} name="function" value=${t.ref} />
      <${Field} name="attempts" value=${`${t.attempts}` + (t.retries ? ` (retries allowed: ${t.retries})` : "")} />
      <${Field} name="started" value=${t.started_at} />
      <${Field} name="finished" value=${t.finished_at} />
      <${Field} name="seconds" value=${seconds(t)} />
      <${Field} name="after" value=${t.after?.length ? t.after.join(", ") : null} />
      <${Field} name="added by" value=${t.added_by} />
      <${Field} name="items" value=${items ? `${items.length}: ${JSON.stringify(counts)}` : null} />
      <${Field} name="retry at" value=${t.retry_at} />
      <${Field} name="error" value=${t.error} pre />
      <${Field} name="output" value=${t.output} pre />
      <${Field} name="hints" value=${t.hints} pre />
      <${Field} name="trace" value=${t.trace} pre />
    </dl>
  </aside>`;
}

/** One task's row; redrawn only when what it shows changed (a live run of 500 tasks gets many events). */
class TaskRow extends Component {
  shouldComponentUpdate({ t, selected }) {
    return selected !== this.props.selected || rowKey(t) !== this.shown;
  }

  render({ t, selected, pick }) {
    this.shown = rowKey(t);
    return html`<tr data-node=${t.node} data-state=${t.state} class=${selected ? "selected" : ""} onClick=${() => pick(t.node)}>
      <td><button type="button" class="link" onClick=${(e) => { e.stopPropagation(); pick(t.node); }}>${t.node}</button></td>
      <td><${State} state=${t.state} /></td><td>${t.attempts}</td><td>${clock(t.started_at)}</td>
      <td>${clock(t.finished_at)}</td><td>${seconds(t)}</td><td>${t.ref}</td>
    </tr>`;
  }
}

const rowKey = (t) => [t.state, t.attempts, t.started_at, t.finished_at, t.ref].join("|");

function TaskTable({ follower }) {
  const tasks = [...follower.model.tasks.values()];
  const pick = (node) => follower.select(node);
  return html`<section aria-labelledby="tasks-title">
    <h2 id="tasks-title">Tasks (${tasks.length})</h2>
    <div class="table-wrap">
      <table id="tasks" class="tasks-table">
        <thead><tr><th scope="col">node</th><th scope="col">state</th><th scope="col">attempts</th><th scope="col">started</th>
          <th scope="col">finished</th><th scope="col">seconds</th><th scope="col">function</th></tr></thead>
        <tbody>${tasks.map((t) => html`<${TaskRow} key=${t.node} t=${t} selected=${follower.selected === t.node} pick=${pick} />`)}</tbody>
      </table>
    </div>
  </section>`;
}

function Legend() {
  return html`<span class="legend" aria-label="Colours of the states">${Object.entries(COLORS).map(([s, c]) =>
    html`<span class="swatch" style=${`--c: ${c}`}>${s}</span>`)}</span>`;
}

function NotFound({ runId, me }) {
  return html`<${Page} title="Flow run not found">
    <p id="not-found">There is no flow run <code>${runId}</code> that you may see.</p>
    ${me ? html`<p class="hint">It may not exist, or its workflow does not give you Read.</p>`
         : html`<p class="hint" id="login-hint">Runs of private workflows are shown to users who may read them:
             <${Link} href=${"/ui/login?next=" + encodeURIComponent(location.pathname)}>log in</${Link}>.</p>`}
    <p><${Link} href=${api.withKey("/ui/flows")}>All flow runs</${Link}></p>
  <//>`;
}

export default function RunPage({ params, me }) {
  flowsCss();
  const runId = params.run;
  const graph = useRef(null);
  const [, setTick] = useState(0);
  const follower = useMemo(() => new RunFollower(runId, () => setTick((n) => n + 1)), [runId]);
  useEffect(() => {
    follower.start(graph.current);
    return () => follower.stop();
  }, [follower]);
  useEffect(() => {
    const onKey = (e) => { if (e.key === "Escape" && follower.selected) follower.select(null); };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [follower]);

  if (follower.notFound) return html`<${NotFound} runId=${runId} me=${me} />`;
  const r = follower.model.run;
  const counts = {};
  for (const t of follower.model.tasks.values()) counts[t.state] = (counts[t.state] || 0) + 1;
  return html`<${Page} title=${r ? `Flow run ${r.name || r.id.slice(0, 8)}` : "Flow run"}
      actions=${html`<${Link} href=${api.withKey("/ui/flows")} id="back">← All runs</${Link}>`}>
    <div class="run-head">
      <span id="run-state" class="fstate" data-state=${r?.state || ""}>${r ? r.state + (r.error ? `: ${r.error}` : "") : "loading"}</span>
      <${Live} state=${follower.live} />
      <span class="run-id">${runId}</span>
      ${r?.workflow ? html`<${Link} href=${api.withKey("/ui/flows?workflow=" + api.enc(r.workflow))}>this workflow's runs</${Link}>` : null}
      ${r ? html`<span><${CountsBar} counts=${counts} /></span>` : null}
      <${Legend} />
    </div>
    ${follower.error ? html`<p class="error" role="alert">${follower.error}</p>` : null}
    <div class="dag-area">
      <div id="graph" ref=${graph} role="img" aria-label="The run's tasks as a graph: choose a task in the table below for its details"></div>
      <${Details} follower=${follower} onClose=${() => follower.select(null)} />
    </div>
    <${TaskTable} follower=${follower} />
  <//>`;
}
