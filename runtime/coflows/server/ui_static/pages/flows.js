// The flow runs page: the latest runs the caller may read, kept current from /flows/events (SSE),
// filtered by ?workflow=, and a form to submit a flow (a declared one, or a spec) to a workflow.
// A run's state changes in place; a new run or task progress reads the list again (at most once
// a second, only when something happened).
import { html, Page, Link, ErrorBox, Loading, useData, useEffect, useRef, useState, when } from "../lib/ui.js";
import * as api from "../lib/api.js";
import { CountsBar, Live, State, flowsCss } from "../flows/common.js";

const LIMIT = 200;

/** The runs (null until read), the stream's state and the last error; follows /flows/events. */
function useRuns() {
  const [runs, setRuns] = useState(null);
  const [live, setLive] = useState("connecting");
  const [error, setError] = useState(null);
  useEffect(() => {
    let alive = true, timer = null, source = null;
    const refresh = async () => {
      timer = null;
      try {
        const list = await api.get(api.q("/flows/runs", { limit: LIMIT }));
        if (alive) { setRuns(list); setError(null); }
      } catch (err) {
        if (alive) setError(err);
      }
    };
    const later = () => { if (timer === null && alive) timer = setTimeout(refresh, 1000); };
    refresh().then(() => {
      if (!alive) return;
      source = new EventSource(api.withKey("/flows/events"));
      source.onopen = () => { setLive("live"); refresh(); };  // (re)connected: catch up once
      source.onerror = () => setLive(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting");
      source.addEventListener("run", (msg) => {
        const ev = JSON.parse(msg.data);
        setRuns((list) => list && list.map((r) => (r.id === ev.run_id ? { ...r, state: ev.state } : r)));
        later();  // a new run, counts and times
      });
      for (const kind of ["task", "graph"]) source.addEventListener(kind, later);
    });
    return () => { alive = false; clearTimeout(timer); source?.close(); };
  }, []);
  return { runs, live, error };
}

function RunRow({ r, names }) {
  return html`<tr data-run=${r.id} data-state=${r.state}>
    <td><a href=${api.withKey(`/ui/flows/runs/${api.enc(r.id)}`)} data-route title=${r.id}>${r.id.slice(0, 8)}</a></td>
    <td>${r.name || ""}</td>
    <td><${State} state=${r.state} /></td>
    <td><${CountsBar} counts=${r.counts || {}} /></td>
    <td title=${r.workflow || ""}>${names[r.workflow] || r.workflow || ""}</td>
    <td>${when(r.created_at)}</td>
    <td>${when(r.finished_at)}</td>
  </tr>`;
}

function Empty({ me, workflow }) {
  if (!me) {  // a guest sees public workflows only: an empty list says nothing about the others
    return html`<p id="login-hint" class="hint">Runs of private workflows are shown only to users who may read them:
      <${Link} href=${"/ui/login?next=" + encodeURIComponent(location.pathname + location.search)}>log in</${Link}> to see them.</p>`;
  }
  if (workflow) return html`<p id="empty">No runs of workflow <code>${workflow}</code> among the latest ${LIMIT}.</p>`;
  return html`<p id="empty">No flow runs yet. Submit one with the form above, <code>POST /flows/{workflow}/runs</code>
    or <code>coflows flow submit</code>.</p>`;
}

function parseInputs(text) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`Inputs: not JSON (${err.message})`);
  }
}

/** Submit a flow to a workflow: one it declares (package.json Flows) or a spec, with optional inputs. */
function SubmitForm({ workflows, initial }) {
  const [wid, setWid] = useState(initial && workflows.some((w) => w.id === initial) ? initial : workflows[0]?.id || "");
  const declared = useData(() => (wid ? api.get(`/flows/${api.enc(wid)}/flows`) : Promise.resolve([])), [wid]);
  const flows = declared.data || [];
  const [mode, setMode] = useState(null);  // "flow" | "spec"; null: a declared flow when there is one
  const [flow, setFlow] = useState("");
  const [spec, setSpec] = useState("");
  const [name, setName] = useState("");
  const [inputs, setInputs] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const kind = mode || (flows.length ? "flow" : "spec");
  const chosen = flows.some((f) => f.Name === flow) ? flow : flows[0]?.Name || "";

  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = kind === "flow" ? { flow: chosen } : { spec, ...(name.trim() ? { name: name.trim() } : {}) };
      const parsed = parseInputs(inputs);
      if (parsed !== undefined) body.inputs = parsed;
      if (kind === "flow" && !chosen) throw new Error("Choose a flow");
      if (kind === "spec" && !spec.trim()) throw new Error("Write a spec: a graph string, YAML or JSON");
      setBusy(true);
      const answer = await api.post(`/flows/${api.enc(wid)}/runs`, body);
      window.coflowsNavigate(`/ui/flows/runs/${api.enc(answer.run_id)}`);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  if (!workflows.length) return html`<p class="hint">No workflow you may see, so none to submit a flow to.</p>`;
  return html`<form class="stack" id="submit-flow" onSubmit=${submit}>
    <label for="flow-workflow">Workflow</label>
    <select id="flow-workflow" value=${wid} onChange=${(e) => { setWid(e.target.value); setMode(null); setFlow(""); }}>
      ${workflows.map((w) => html`<option value=${w.id}>${w.name || w.id}</option>`)}
    </select>
    <fieldset class="choice">
      <legend>What to run</legend>
      <label><input type="radio" name="flow-kind" value="flow" checked=${kind === "flow"} disabled=${!flows.length}
        onChange=${() => setMode("flow")} /> A flow the workflow declares${declared.loading ? "" : ` (${flows.length})`}</label>
      <label><input type="radio" name="flow-kind" value="spec" checked=${kind === "spec"}
        onChange=${() => setMode("spec")} /> A spec</label>
    </fieldset>
    <${ErrorBox} error=${declared.error} />
    ${kind === "flow" ? html`
      <label for="flow-name">Flow</label>
      <select id="flow-name" value=${chosen} onChange=${(e) => setFlow(e.target.value)}>
        ${flows.map((f) => html`<option value=${f.Name}>${f.Name}</option>`)}
      </select>` : html`
      <label for="flow-spec">Spec (a graph string, YAML or JSON)</label>
      <textarea id="flow-spec" rows="6" spellcheck="false" value=${spec} onInput=${(e) => setSpec(e.target.value)}
        placeholder="Data.py/load; Data.py/clean; Data.py/report" aria-describedby="flow-spec-hint"></textarea>
      <p class="hint" id="flow-spec-hint">Functions are <code>File.py/function</code> of this workflow; see docs/flows.md for the forms.</p>
      <label for="flow-run-name">Run name (optional)</label>
      <input id="flow-run-name" value=${name} onInput=${(e) => setName(e.target.value)} />`}
    <label for="flow-inputs">Inputs (optional JSON)</label>
    <textarea id="flow-inputs" rows="3" spellcheck="false" value=${inputs} onInput=${(e) => setInputs(e.target.value)}
      placeholder='{"n": 3}'></textarea>
    ${error ? html`<p class="error" role="alert">${error.message}</p>` : null}
    <div><button type="submit" disabled=${busy}>${busy ? "Submitting…" : "Submit flow"}</button></div>
  </form>`;
}

export default function Flows({ query, me }) {
  flowsCss();
  const { runs, live, error } = useRuns();
  const workflows = useData(() => api.get("/flow/workflows"), []);
  const workflow = query.workflow || "";
  const shown = runs && (workflow ? runs.filter((r) => r.workflow === workflow) : runs);
  const filter = (e) => window.coflowsNavigate(e.target.value ? api.q("/ui/flows", { workflow: e.target.value }) : "/ui/flows");
  const submitOpen = useRef(Boolean(query.submit));
  const names = Object.fromEntries((workflows.data || []).map((w) => [w.id, w.name || w.id]));
  return html`<${Page} title="Flow runs" actions=${html`<${Live} state=${live} />
      <${Link} href=${api.withKey("/ui/agents")} id="agent-runs">Agent runs →</${Link}>`}>
    <details class="submit card" open=${submitOpen.current}>
      <summary>Submit a flow</summary>
      ${workflows.data ? html`<${SubmitForm} workflows=${workflows.data} initial=${workflow} />`
                       : workflows.error ? html`<${ErrorBox} error=${workflows.error} />` : html`<${Loading} what="workflows" />`}
    </details>
    <section aria-labelledby="runs-title">
      <h2 id="runs-title">Latest runs${workflow ? ` of ${names[workflow] || workflow}` : ""}</h2>
      <div class="filters">
        <label for="runs-workflow">Workflow</label>
        <select id="runs-workflow" value=${workflow} onChange=${filter}>
          <option value="">all</option>
          ${(workflows.data || []).map((w) => html`<option value=${w.id}>${w.name || w.id}</option>`)}
          ${workflow && !(workflows.data || []).some((w) => w.id === workflow) ? html`<option value=${workflow}>${workflow}</option>` : null}
        </select>
      </div>
      ${error ? html`<p class="error" role="alert">could not list runs: ${error.message}</p>` : null}
      ${shown === null ? html`<${Loading} what="runs" />` : null}
      ${shown && shown.length ? html`<div class="table-wrap">
        <table id="runs" class="runs-table">
          <thead><tr><th scope="col">run</th><th scope="col">name</th><th scope="col">state</th><th scope="col">tasks</th>
            <th scope="col">workflow</th><th scope="col">created</th><th scope="col">finished</th></tr></thead>
          <tbody>${shown.map((r) => html`<${RunRow} key=${r.id} r=${r} names=${names} />`)}</tbody>
        </table>
      </div>` : null}
      ${shown && !shown.length ? html`<${Empty} me=${me} workflow=${workflow} />` : null}
      ${shown?.length > 0 && !me ? html`<p class="hint">You see the runs of public workflows; log in for the others.</p>` : null}
    </section>
    <p class="hint">Agents' runs (with their output) are on the <${Link} href=${api.withKey("/ui/agents")}>agents page</${Link}>.</p>
  <//>`;
}
