// The agents page (/ui/agents, ?workflow=ID to narrow): every agent the caller may see, with its
// state, schedule and next fire times (in the browser's time zone), the M topic it watches, its
// hooks and error, and its last runs with their output. Start, Stop and Run now are shown to
// callers with Write on the agent's workflow (the API refuses the others anyway).
import { html, Page, useData, useEffect, useState, ErrorBox, Loading, Link, when } from "../lib/ui.js";
import * as api from "../lib/api.js";

const CSS = "/ui/static/pages/agents.css";
if (!document.querySelector(`link[rel=stylesheet][href="${CSS}"]`)) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = CSS;
  document.head.appendChild(link);
}

const LIST_MS = 10000; // the list (states, next times) is fetched again this often
const RUNNING_MS = 1000; // while a run is going, its agent's runs are fetched again this often
const RUNS = 10;
export const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

/** A duration in ms as text. */
export function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function NextRuns({ agent }) {
  const times = agent.NextRuns || [];
  if (!agent.Schedule) return html`<dd class="schedule">none (no schedule)</dd>`;
  return html`<dd class="schedule">
    <code>${agent.Schedule}</code>
    ${times.length
      ? html`<ol class="next-runs" aria-label=${`Next runs of ${agent.Name}, ${ZONE}`}>
          ${times.map((t) => html`<li><time datetime=${t}>${when(t)}</time></li>`)}</ol>
        <span class="hint">times in ${ZONE}</span>`
      : html`<span class="hint"> — ${agent.State === "running" ? "no future fire time" : "not scheduled while " + agent.State}</span>`}
  </dd>`;
}

const count = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

function RunRow({ run }) {
  const output = run.Output || "";
  const error = run.Error || "";
  return html`<tr class=${"run " + run.Status}>
    <td>${run.Hook}</td>
    <td><time datetime=${run.Started}>${when(run.Started)}</time></td>
    <td><span class=${"pill " + run.Status}>${run.Status}</span></td>
    <td>${run.Status === "running" ? "…" : duration(run.DurationMs)}</td>
    <td class="detail">${run.Detail || ""}</td>
    <td class="output">${output || error
      ? html`<details><summary>${error ? "error" : "output"} (${count((output + "\n" + error).split("\n").filter(Boolean).length, "line")})</summary>
          ${error ? html`<pre class="run-error">${error}</pre>` : null}${output ? html`<pre>${output}</pre>` : null}</details>`
      : html`<span class="hint">none</span>`}</td>
  </tr>`;
}

function Runs({ agent, tick }) {
  const runs = useData(() => api.get(api.q(`/flow/agent/${api.enc(agent.ID)}/runs`, { limit: RUNS })), [agent.ID, tick, agent.NextRun, (agent.Running || []).join()]);
  const going = (runs.data || []).some((r) => r.Status === "running");
  useEffect(() => {
    if (!going) return undefined;
    const t = setTimeout(runs.reload, RUNNING_MS);
    return () => clearTimeout(t);
  }, [going, runs.data]);
  if (runs.error) return html`<${ErrorBox} error=${runs.error} />`;
  if (!runs.data) return html`<${Loading} what="runs" />`;
  if (!runs.data.length) return html`<p class="hint">No runs yet.</p>`;
  return html`<div class="table-wrap"><table class="runs">
    <caption class="sr-only">Last runs of ${agent.Name}</caption>
    <thead><tr><th scope="col">Hook</th><th scope="col">Started</th><th scope="col">Status</th>
      <th scope="col">Duration</th><th scope="col">Detail</th><th scope="col">Output</th></tr></thead>
    <tbody>${runs.data.map((r, i) => html`<${RunRow} key=${r.Started + r.Hook + i} run=${r} />`)}</tbody>
  </table></div>`;
}

function Controls({ agent, onChanged, onRun }) {
  const [busy, setBusy] = useState("");
  const [error, setError] = useState(null);
  const act = async (what, path) => {
    setBusy(what);
    setError(null);
    try {
      const answer = await api.post(path);
      if (what === "run") onRun(answer);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy("");
    }
  };
  const base = `/flow/agent/${api.enc(agent.ID)}`;
  const running = agent.State === "running";
  const label = agent.Name || agent.ID;
  return html`<div class="agent-actions">
    ${running
      ? html`<button class="secondary" disabled=${!!busy} aria-label=${`Stop ${label}`}
            onClick=${() => act("stop", base + "/stop")}>${busy === "stop" ? "Stopping…" : "Stop"}</button>`
      : html`<button disabled=${!!busy} aria-label=${`Start ${label}`}
            onClick=${() => act("start", base + "/start")}>${busy === "start" ? "Starting…" : "Start"}</button>`}
    ${(agent.Hooks || []).includes("Job") && agent.State !== "error"
      ? html`<button disabled=${!!busy} aria-label=${`Run ${label} now`}
            onClick=${() => act("run", base + "/run?wait=false")}>${busy === "run" ? "Starting run…" : "Run now"}</button>`
      : null}
    <${ErrorBox} error=${error} />
  </div>`;
}

function AgentCard({ agent, onChanged }) {
  const [tick, setTick] = useState(0);
  const [note, setNote] = useState("");
  const canWrite = agent.Level === "write";
  const canRead = canWrite || agent.Level === "read";
  const onRun = (run) => {
    setNote(`Run started at ${when(run.Started)}.`);
    setTick((t) => t + 1);
  };
  const changed = () => { onChanged(); setTick((t) => t + 1); };
  const id = "agent-" + agent.ID.replace(/[^A-Za-z0-9_-]/g, "_");
  return html`<article class="card agent-card" aria-labelledby=${id} data-agent=${agent.ID}>
    <div class="agent-head">
      <h2 id=${id}>${agent.Name || agent.ID}</h2>
      <span class=${"pill state " + agent.State}>${agent.State}</span>
      ${canWrite ? html`<${Controls} agent=${agent} onChanged=${changed} onRun=${onRun} />` : null}
    </div>
    <p class="sr-only" role="status" aria-live="polite">${note}</p>
    ${agent.Description ? html`<p>${agent.Description}</p>` : null}
    ${agent.Error ? html`<pre class="error agent-error" role="alert">${agent.Error}</pre>` : null}
    <dl class="facts">
      <dt>ID</dt><dd><code>${agent.ID}</code></dd>
      <dt>Workflow</dt><dd><${Link} href=${"/ui/workflows/" + api.enc(agent.WorkflowID)}>${agent.Workflow || agent.WorkflowID}</${Link}></dd>
      <dt>File</dt><dd>${agent.File || ""} ${agent.Language ? html`<span class="hint">(${agent.Language})</span>` : null}</dd>
      <dt>Schedule</dt><${NextRuns} agent=${agent} />
      <dt>M topic</dt><dd>${agent.MID ? html`<${Link} href=${"/ui/m/" + api.enc(agent.MID)}>${agent.MID}</${Link}>` : "none"}</dd>
      <dt>Hooks</dt><dd>${(agent.Hooks || []).map((h) => html`<span class="pill">${h}</span>`)}</dd>
      ${(agent.Running || []).length ? html`<dt>Running</dt><dd>${agent.Running.join(", ")}</dd>` : null}
    </dl>
    <h3>Last runs</h3>
    ${canRead ? html`<${Runs} agent=${agent} tick=${tick} />`
              : html`<p class="hint">Runs and their output need Read on the workflow.</p>`}
  </article>`;
}

export default function Agents({ query }) {
  const filter = query.workflow || "";
  const list = useData(() => api.get("/flow/agents"), []);
  useEffect(() => {
    const t = setInterval(() => { if (!document.hidden) list.reload(); }, LIST_MS);
    return () => clearInterval(t);
  }, []);
  const all = list.data || [];
  const workflows = [...new Map(all.map((a) => [a.WorkflowID, a.Workflow || a.WorkflowID])).entries()];
  const shown = filter ? all.filter((a) => a.WorkflowID === filter || a.Workflow === filter) : all;
  const choose = (e) => {
    const v = e.target.value;
    window.coflowsNavigate(v ? api.q("/ui/agents", { workflow: v }) : "/ui/agents", true);
  };
  return html`<${Page} title="Agents">
    <div class="toolbar">
      <label for="agent-workflow">Workflow</label>
      <select id="agent-workflow" value=${filter} onChange=${choose}>
        <option value="">All workflows</option>
        ${workflows.map(([wid, name]) => html`<option value=${wid}>${name}</option>`)}
      </select>
      <button class="secondary" onClick=${list.reload}>Refresh</button>
      <span class="hint">Times in ${ZONE}.</span>
    </div>
    <${ErrorBox} error=${list.error} />
    ${list.loading && !list.data ? html`<${Loading} what="agents" />` : null}
    ${list.data && !shown.length ? html`<p>No agent you may see${filter ? " in this workflow" : ""}.</p>` : null}
    <div class="agents">
      ${shown.map((a) => html`<${AgentCard} key=${a.ID} agent=${a} onChanged=${list.reload} />`)}
    </div>
  <//>`;
}
