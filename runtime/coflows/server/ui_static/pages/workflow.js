// The workflow page (/ui/workflows/{id}): its README (Markdown, sanitized), queries with their
// compile errors (file:line), agents, flows, files, packages with install state and — for callers
// with Write — its fixed permissions. Data: GET /flow/workflows/{id}.
import { html, Page, useData, useEffect, ErrorBox, Loading, levelName } from "../lib/ui.js";
import * as api from "../lib/api.js";
import { marked } from "marked";
import DOMPurify from "dompurify";

/** Add a stylesheet link once (pages bring their own CSS). */
export function useCss(href) {
  useEffect(() => {
    if (document.querySelector(`link[rel=stylesheet][href="${href}"]`)) return;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = href;
    document.head.appendChild(link);
  }, [href]);
}

/** `file:line:column: message` of a SourceError from the API. */
export function where(e) {
  let s = e.file || "";
  if (e.line !== null && e.line !== undefined) s += `:${e.line}`;
  if (e.column !== null && e.column !== undefined) s += `:${e.column}`;
  return s;
}

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const queryHref = (wid, qid) => `/ui/workflows/${api.enc(wid)}/queries/${api.enc(qid)}`;

function Readme({ readme }) {
  if (!readme) return html`<p class="hint">This workflow has no README.md.</p>`;
  // Markdown → HTML, then DOMPurify: the README is the workflow author's text, never trusted as HTML
  // its headings go under the section's h2 (the page keeps one h1): # → h3, ## → h4, …
  const safe = DOMPurify.sanitize(marked.parse(readme.text, { async: false }))
    .replace(/<(\/?)h([1-6])(?=[\s>])/g, (_, slash, n) => `<${slash}h${Math.min(6, Number(n) + 2)}`);
  return html`<div class="readme" dangerouslySetInnerHTML=${{ __html: safe }}></div>
    ${readme.truncated ? html`<p class="hint">The README is longer than 256 KB; only its beginning is shown.</p>` : null}`;
}

function Errors({ wf }) {
  const rows = [
    ...wf.base_errors.map((e) => ({ e, what: "Base" })),
    ...wf.queries.flatMap((q) => q.errors.map((e) => ({ e, what: q.id, qid: q.id }))),
  ];
  if (!rows.length && !wf.problems.length) return html`<p class="state ok">No errors: everything compiles.</p>`;
  return html`<ul class="errors">
    ${wf.problems.map((p) => html`<li><span class="error-text">${p}</span></li>`)}
    ${rows.map(({ e, what, qid }) => html`<li>
      ${qid ? html`<a href=${queryHref(wf.id, qid)} data-route><code class="where">${where(e)}</code></a>`
            : html`<code class="where">${where(e)}</code>`}
      <span class="error-text">${e.message}</span> <span class="hint">(${what})</span></li>`)}
  </ul>`;
}

function Queries({ wf }) {
  if (!wf.queries.length) return html`<p>No queries.</p>`;
  return html`<div class="table-wrap"><table class="queries">
    <thead><tr><th scope="col">Query</th><th scope="col">Language</th><th scope="col">Functions</th><th scope="col">State</th></tr></thead>
    <tbody>${wf.queries.map((q) => html`<tr>
      <td><a href=${queryHref(wf.id, q.id)} data-route>${q.id}</a>${q.app ? html` · <a href=${q.app} class="app-link">open app</a>` : null}</td>
      <td>${q.language || "?"}</td>
      <td>${q.functions.length ? q.functions.join(", ") : html`<span class="hint">none</span>`}</td>
      <td>${q.errors.length ? html`<span class="state bad">${q.stale ? "error (serving last good version)" : "does not compile"}</span>`
                            : html`<span class="state ok">loaded</span>`}</td>
    </tr>`)}</tbody></table></div>`;
}

function Packages({ p }) {
  const all = [
    ...p.pips.map((id) => ["pip", id]),
    ...p.jars.map((j) => ["jar", [j.id || j.url, j.version].filter(Boolean).join(" ")]),
    ...p.nugets.map((n) => ["NuGet", [n.id, n.version].filter(Boolean).join(" ")]),
  ];
  if (!all.length) return html`<p>No packages.</p>`;
  const state = p.state || "not installed by the server";
  return html`<p>Install state: <span class=${"state " + (p.state === "failed" ? "bad" : p.state === "installed" ? "ok" : "")}
      id="packages-state">${state}</span></p>
    <ul class="packages">${all.map(([kind, name]) => html`<li><span class="pill">${kind}</span> ${name}</li>`)}</ul>`;
}

function Files({ files }) {
  if (!files.items.length) return html`<p>No files.</p>`;
  return html`<div class="table-wrap"><table class="files">
    <thead><tr><th scope="col">File</th><th scope="col">Kind</th><th scope="col" class="num">Size</th></tr></thead>
    <tbody>${files.items.map((f) => html`<tr><td><code>${f.path}</code></td><td>${f.kind}</td><td class="num">${size(f.size)}</td></tr>`)}</tbody>
  </table></div>${files.truncated ? html`<p class="hint">Only the first 1000 files are listed.</p>` : null}`;
}

function Section({ id, title, children }) {
  return html`<section class="card wf-section" aria-labelledby=${id}><h2 id=${id}>${title}</h2>${children}</section>`;
}

export default function WorkflowPage({ params }) {
  useCss("/ui/static/pages/workflow.css");
  const wid = params.wid;
  const { data: wf, error, loading } = useData(() => api.get(`/flow/workflows/${api.enc(wid)}`), [wid]);
  if (error) return html`<${Page} title="Workflow"><${ErrorBox} error=${error} /><//>`;
  if (loading || !wf) return html`<${Page} title="Workflow"><${Loading} what="the workflow" /><//>`;
  const errorCount = wf.base_errors.length + wf.problems.length + wf.queries.reduce((n, q) => n + q.errors.length, 0);
  return html`<${Page} title=${wf.name}>
    <p class="wf-meta">ID <code>${wf.id}</code> · your level: <strong>${levelName(wf.level)}</strong></p>
    <${Section} id="wf-readme" title="README"><${Readme} readme=${wf.readme} /><//>
    <${Section} id="wf-errors" title=${errorCount ? `Errors (${errorCount})` : "Errors"}><${Errors} wf=${wf} /><//>
    <${Section} id="wf-queries" title="Queries"><${Queries} wf=${wf} /><//>
    <div class="wf-grid">
      <${Section} id="wf-agents" title="Agents">
        ${wf.agents.length ? html`<ul>${wf.agents.map((a) => html`<li>${a.name} <span class="hint">(${a.file})</span></li>`)}</ul>`
                           : html`<p>No agents.</p>`}
        <p><a href=${"/ui/agents?workflow=" + api.enc(wf.id)} data-route>Agents' state, schedules and runs</a></p>
      <//>
      <${Section} id="wf-flows" title="Flows">
        ${wf.flows.length ? html`<ul>${wf.flows.map((f) => html`<li><strong>${f.name}</strong>
            ${f.spec ? html` <code>${f.spec}</code>` : f.content ? html` <span class="hint">(${f.content})</span>` : null}</li>`)}</ul>`
                          : html`<p>No declared flows.</p>`}
        <p><a href=${"/ui/flows?workflow=" + api.enc(wf.id)} data-route>Flow runs of this workflow</a></p>
      <//>
    </div>
    <${Section} id="wf-packages" title="Packages"><${Packages} p=${wf.packages} /><//>
    <${Section} id="wf-files" title="Files"><${Files} files=${wf.files} /><//>
    ${wf.permissions ? html`<${Section} id="wf-permissions" title="Permissions (package.json)">
      <div class="table-wrap"><table class="permissions">
        <thead><tr><th scope="col">User or group</th><th scope="col">Level</th></tr></thead>
        <tbody>${wf.permissions.map((p) => html`<tr><td>${p.id}</td><td>${levelName(p.level)}</td></tr>`)}</tbody>
      </table></div><//>` : null}
  <//>`;
}
