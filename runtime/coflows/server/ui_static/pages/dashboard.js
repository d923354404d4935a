// The dashboard: the workflows this caller may see (state, queries, agents, latest runs) and the
// server's health.
import { html, Page, useData, useEffect, ErrorBox, Loading, when } from "../lib/ui.js";
import * as api from "../lib/api.js";

function uptime(seconds) {
  if (seconds === undefined || seconds === null) return "";
  const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : m ? `${m} min` : `${s} s`;
}

function WorkflowCard({ wf, agents, runs }) {
  const problems = wf.problems || [];
  const queries = wf.queries || [];
  const mine = agents.filter((a) => a.WorkflowID === wf.id);
  const latest = runs.filter((r) => r.workflow === wf.id).slice(0, 3);
  return html`<article class="card workflow-card" aria-labelledby=${"wf-" + wf.id}>
    <h2 id=${"wf-" + wf.id}><a href=${"/ui/workflows/" + api.enc(wf.id)} data-route>${wf.name || wf.id}</a></h2>
    <p class=${problems.length ? "state bad" : "state ok"}>${problems.length ? `${problems.length} problem${problems.length > 1 ? "s" : ""}` : "loaded"}</p>
    <dl class="facts">
      <dt>Queries</dt><dd>${queries.length ? queries.map((q) => html`<a href=${`/ui/workflows/${api.enc(wf.id)}/queries/${api.enc(q.id)}`} data-route
        class=${q.errors.length ? "pill failed" : "pill"}>${q.id}</a> `) : "none"}</dd>
      <dt>Agents</dt><dd>${mine.length ? mine.map((a) => html`<a href=${"/ui/agents?workflow=" + api.enc(wf.id)} data-route class=${"pill " + a.State}>${a.Name || a.ID}: ${a.State}</a> `) : "none"}</dd>
      <dt>Latest runs</dt><dd>${latest.length ? latest.map((r) => html`<a href=${"/ui/flows/runs/" + api.enc(r.id)} data-route class=${"pill " + r.state}>${r.name || r.id.slice(0, 8)}: ${r.state}</a> `) : "none"}</dd>
    </dl>
  </article>`;
}

export default function Dashboard() {
  const health = useData(() => api.get("/health"), []);
  const data = useData(() => Promise.all([
    api.get("/flow/workflows"),
    api.get("/flow/agents").catch(() => []),
    api.get(api.q("/flows/runs", { limit: 50 })).catch(() => []),
  ]), []);
  const h = health.data;
  // render marker for bench/flows_page.py: the cards are drawn (two frames after they are committed)
  useEffect(() => {
    if (!data.data) return;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const app = (window.coflowsApp = window.coflowsApp || {});
      app.rendered = app.rendered || {};
      if (app.rendered.dashboard === undefined) {
        app.rendered.dashboard = performance.now();
        performance.mark("coflows:dashboard:rendered");
      }
    }));
  }, [data.data]);
  return html`<${Page} title="Dashboard">
    <${ErrorBox} error=${data.error || health.error} />
    ${h ? html`<section class="card health" aria-label="Server health">
      <h2>Server</h2>
      <dl class="facts">
        <dt>Status</dt><dd class="state ok">${h.status}</dd>
        <dt>Version</dt><dd>${h.version}</dd>
        <dt>Uptime</dt><dd>${uptime(h.uptime_s)}</dd>
        <dt>Engines</dt><dd>${(h.engines || []).join(", ") || "none started"}</dd>
        <dt>Workflows</dt><dd>${h.workflows}</dd>
      </dl>
    </section>` : null}
    ${data.loading && !data.data ? html`<${Loading} what="workflows" />` : null}
    ${data.data ? html`<div class="cards" id="workflows">
      ${data.data[0].length === 0 ? html`<p>No workflow you may see. Log in, or ask an admin for access.</p>` : null}
      ${data.data[0].map((wf) => html`<${WorkflowCard} key=${wf.id} wf=${wf} agents=${data.data[1]} runs=${data.data[2]} />`)}
    </div>` : null}
  <//>`;
}
