// The query page (/ui/workflows/{id}/queries/{qid}): every function with its docs, signature and
// permissions, a form made from the signature that calls it (result as a table, a chart, text or
// JSON), the equivalent curl line, and the source, read-only, with the lines that do not compile
// marked. Data: GET /flow/workflows/{id} (level, errors), GET /flow/openapi/{id}/{qid} (functions
// the caller may call), GET /flow/source/{id}/{qid} (Read), calls to /flow/query/{id}/{qid}/{fn}.
import { html, Page, useData, useState, useEffect, useRef, ErrorBox, Loading } from "../lib/ui.js";
import * as api from "../lib/api.js";
import hljs from "highlight";
import uPlot from "uplot";
import { useCss, where } from "./workflow.js";

const READ = 1;

// -- functions from the OpenAPI document ------------------------------------------------------------
function typeOf(schema) {
  const t = Array.isArray(schema.type) ? schema.type.find((x) => x !== "null") : schema.type;
  if (schema.enum) return "enum";
  if (t === "string" && (schema.format === "date" || schema.format === "date-time")) return schema.format;
  return t || "any";
}

/** [{name, description, params:[{name, required, schema, description, kind}], raw}] of the query. */
function functionsOf(doc, wid, qid) {
  const prefix = `/flow/query/${wid}/${qid}/`;
  return Object.entries(doc.paths || {}).filter(([p]) => p.startsWith(prefix)).map(([p, ops]) => {
    const get = ops.get || {}, post = ops.post || {};
    const body = post.requestBody?.content?.["application/json"]?.schema || {};
    return {
      name: p.slice(prefix.length),
      description: get.description || "",
      returns: get.responses?.["200"]?.description || "",
      params: (get.parameters || []).map((x) => ({ name: x.name, required: x.required, schema: x.schema || {},
        description: x.description || "", kind: typeOf(x.schema || {}) })),
      raw: body.description === "passed as raw JSON text", // one string parameter: a POST body would be that text
    };
  }).sort((a, b) => a.name.localeCompare(b.name));
}

const LABEL = { integer: "integer", number: "number", boolean: "true/false", string: "text", date: "date",
  "date-time": "date and time", enum: "one of", array: "JSON list", object: "JSON object", any: "JSON value" };

function signature(fn) {
  return `${fn.name}(${fn.params.map((p) => `${p.name}${p.required ? "" : "?"}: ${LABEL[p.kind] || p.kind}`).join(", ")})`;
}

/** The form's raw values → {args: {name: value}} or {error: {param, message}}. */
function convert(fn, values) {
  const args = {};
  for (const p of fn.params) {
    const v = values[p.name];
    if (p.kind === "boolean") { args[p.name] = !!v; continue; }
    if (v === undefined || v === "") {
      if (p.required) return { error: { param: p.name, message: `${p.name} is required` } };
      continue;
    }
    if (p.kind === "integer" || p.kind === "number") {
      const n = Number(v);
      if (!Number.isFinite(n) || (p.kind === "integer" && !Number.isInteger(n)))
        return { error: { param: p.name, message: `${p.name}: expected ${LABEL[p.kind] === "integer" ? "an integer" : "a number"}` } };
      args[p.name] = n;
    } else if (p.kind === "array" || p.kind === "object" || p.kind === "any") {
      try { args[p.name] = JSON.parse(v); } catch { return { error: { param: p.name, message: `${p.name}: not valid JSON` } }; }
    } else {
      args[p.name] = v;
    }
  }
  return { args };
}

function callPath(wid, qid, fn, args) {
  const path = `/flow/query/${api.enc(wid)}/${qid.split("/").map(api.enc).join("/")}/${api.enc(fn.name)}`;
  if (!fn.raw) return { method: "POST", path };
  return { method: "GET", path: api.q(path, Object.fromEntries(Object.entries(args).map(([k, v]) => [k, String(v)]))) };
}

const shq = (s) => "'" + String(s).replace(/'/g, "'\\''") + "'";

function curlLine(me, call, args) {
  const key = me ? ' -H "x-api-key: $KEY"' : "";
  const url = shq(location.origin + call.path);
  if (call.method === "GET") return `curl${key} ${url}`;
  return `curl -X POST${key} -H 'content-type: application/json' -d ${shq(JSON.stringify(args))} ${url}`;
}

// -- results ----------------------------------------------------------------------------------------
const isRecord = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
const isNum = (x) => typeof x === "number" && Number.isFinite(x);

/** How a result is best shown: {kind: "records"|"series"|"text"|"json", columns, numeric}. */
export function shapeOf(value) {
  if (typeof value === "string") return { kind: "text" };
  if (Array.isArray(value) && value.length) {
    if (value.every(isNum)) return { kind: "series" };
    if (value.every(isRecord)) {
      const columns = [...new Set(value.slice(0, 1000).flatMap(Object.keys))].slice(0, 50);
      const numeric = columns.filter((c) => value.every((r) => r[c] === undefined || r[c] === null || isNum(r[c])) && value.some((r) => isNum(r[c])));
      return { kind: "records", columns, numeric };
    }
  }
  return { kind: "json" };
}

function cell(v) {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

const MAX_ROWS = 500;

function RecordsTable({ rows, columns }) {
  return html`<div class="table-wrap"><table class="result-table">
    <thead><tr>${columns.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>${rows.slice(0, MAX_ROWS).map((r) => html`<tr>${columns.map((c) => html`<td class=${isNum(r[c]) ? "num" : ""}>${cell(r[c])}</td>`)}</tr>`)}</tbody>
  </table></div>${rows.length > MAX_ROWS ? html`<p class="hint">First ${MAX_ROWS} of ${rows.length} rows.</p>` : null}`;
}

const COLORS = ["#1f6feb", "#c62828", "#2e9d4f", "#b26a00", "#7b1fa2", "#00838f"];

/** A uPlot line chart of numeric series against their index. */
function Chart({ series, label }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const n = series[0].values.length;
    const data = [Array.from({ length: n }, (_, i) => i), ...series.map((s) => s.values)];
    const width = () => Math.max(240, Math.min(el.clientWidth || 600, 1100));
    const plot = new uPlot({
      width: width(), height: 260, title: label,
      scales: { x: { time: false } },
      series: [{ label: "index" }, ...series.map((s, i) => ({ label: s.name, stroke: COLORS[i % COLORS.length], width: 2 }))],
      axes: [{ incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 1e5, 1e6] }, {}],
    }, data, el);
    const onResize = () => plot.setSize({ width: width(), height: 260 });
    window.addEventListener("resize", onResize);
    return () => { window.removeEventListener("resize", onResize); plot.destroy(); };
  }, [series, label]);
  return html`<figure class="chart" aria-label=${label}><div ref=${box}></div></figure>`;
}

const VIEW_NAMES = { table: "Table", chart: "Chart", json: "JSON" };

function Result({ value, fnName }) {
  const shape = shapeOf(value);
  const views = shape.kind === "records" ? ["table", ...(shape.numeric.length ? ["chart"] : []), "json"]
    : shape.kind === "series" ? ["chart", "table", "json"] : [];
  const [view, setView] = useState(views[0]);
  const tabs = views.length > 1 ? html`<div class="views" role="group" aria-label="Show the result as">
      ${views.map((v) => html`<button type="button" class=${v === view ? "" : "secondary"} aria-pressed=${v === view}
          onClick=${() => setView(v)}>${VIEW_NAMES[v]}</button>`)}</div>` : null;
  let body;
  if (shape.kind === "text") body = html`<pre class="result-string">${value}</pre>`;
  else if (shape.kind === "json" || view === "json") body = html`<pre class="result-json">${JSON.stringify(value, null, 2)}</pre>`;
  else if (shape.kind === "series" && view === "chart") body = html`<${Chart} series=${[{ name: fnName, values: value }]} label=${`${fnName}: ${value.length} values`} />`;
  else if (shape.kind === "series") body = html`<${RecordsTable} rows=${value.map((v, i) => ({ index: i, value: v }))} columns=${["index", "value"]} />`;
  else if (view === "chart") body = html`<${Chart} series=${shape.numeric.map((c) => ({ name: c, values: value.map((r) => (isNum(r[c]) ? r[c] : null)) }))} label=${`${fnName}: ${shape.numeric.join(", ")}`} />`;
  else body = html`<${RecordsTable} rows=${value} columns=${shape.columns} />`;
  return html`<div class=${"result result-" + shape.kind}>${tabs}${body}</div>`;
}

// -- one function -----------------------------------------------------------------------------------
function Field({ fn, p, value, onInput, invalid }) {
  const id = `f-${fn.name}-${p.name}`;
  const hint = [LABEL[p.kind] || p.kind, p.required ? "required" : "optional", /\s/.test(p.description) ? p.description : ""] // without a description the API gives the type's name
    .filter(Boolean).join(" · ");
  const common = { id, name: p.name, "aria-describedby": id + "-hint", "aria-invalid": invalid ? "true" : undefined };
  let input;
  if (p.kind === "boolean") {
    input = html`<input type="checkbox" ...${common} checked=${!!value} onChange=${(e) => onInput(e.target.checked)} />`;
  } else if (p.kind === "enum") {
    input = html`<select ...${common} value=${value ?? ""} onChange=${(e) => onInput(e.target.value)}>
      ${p.required ? null : html`<option value="">(default)</option>`}
      ${p.schema.enum.map((v) => html`<option value=${v}>${v}</option>`)}</select>`;
  } else if (p.kind === "array" || p.kind === "object" || p.kind === "any") {
    input = html`<textarea rows="2" ...${common} value=${value ?? ""} onInput=${(e) => onInput(e.target.value)}
        onKeyDown=${(e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); e.target.form.requestSubmit(); } }}></textarea>`;
  } else {
    const type = { integer: "number", number: "number", date: "date", "date-time": "datetime-local" }[p.kind] || "text";
    input = html`<input type=${type} step=${p.kind === "number" ? "any" : p.kind === "integer" ? "1" : undefined}
        required=${p.required} placeholder=${p.schema.default !== undefined ? String(p.schema.default) : ""}
        ...${common} value=${value ?? ""} onInput=${(e) => onInput(e.target.value)} />`;
  }
  return html`<div class=${"field" + (p.kind === "boolean" ? " check" : "")}>
    <label for=${id}>${p.name}</label>${input}<span class="hint" id=${id + "-hint"}>${hint}</span></div>`;
}

function FunctionCard({ fn, wid, qid, me, permissions }) {
  const [values, setValues] = useState({});
  const [state, setState] = useState({ busy: false, result: undefined, error: null, ms: null });
  const [copied, setCopied] = useState("");
  const converted = convert(fn, values);
  const args = converted.args || {};
  const call = callPath(wid, qid, fn, args);
  const curl = curlLine(me, call, args);
  const submit = async (e) => {
    e.preventDefault();
    if (converted.error) { setState({ busy: false, result: undefined, error: { message: converted.error.message }, ms: null }); return; }
    setState({ busy: true, result: undefined, error: null, ms: null });
    const t0 = performance.now();
    try {
      const result = call.method === "GET" ? await api.get(call.path) : await api.post(call.path, args);
      setState({ busy: false, result, error: null, ms: Math.round(performance.now() - t0) });
    } catch (err) {
      setState({ busy: false, result: undefined, error: err, ms: null });
    }
  };
  const copy = async () => {
    try { await navigator.clipboard.writeText(curl); setCopied("Copied."); } catch { setCopied("Select the line and copy it."); }
  };
  const hid = `fn-${fn.name}`;
  return html`<article class="card fn" id=${hid} aria-labelledby=${hid + "-h"}>
    <h3 id=${hid + "-h"}><code>${signature(fn)}</code></h3>
    ${fn.description ? html`<p class="fn-doc">${fn.description}</p>` : null}
    ${fn.returns && fn.returns !== "the function's result" ? html`<p class="hint">Returns: ${fn.returns}</p>` : null}
    ${permissions ? html`<p class="fn-permissions">Callable by members of: ${permissions.map((g) => html`<span class="pill">${g.group} (${["denied", "view", "read", "write"][g.level + 1] || g.level})</span>`)}</p>` : null}
    <form class="call-form" onSubmit=${submit} aria-label=${"Call " + fn.name}>
      ${fn.params.map((p) => html`<${Field} fn=${fn} p=${p} value=${values[p.name]} invalid=${converted.error?.param === p.name}
          onInput=${(v) => setValues({ ...values, [p.name]: v })} />`)}
      <div class="call-actions"><button type="submit" disabled=${state.busy}>${state.busy ? "Calling…" : "Call " + fn.name}</button></div>
    </form>
    <div class="curl"><code class="curl-line">${curl}</code>
      <button type="button" class="secondary" onClick=${copy} aria-label=${"Copy the curl line of " + fn.name}>Copy</button>
      <span class="hint" aria-live="polite">${copied}</span></div>
    <div class="outcome" aria-live="polite">
      ${state.error ? html`<p class="error call-error" role="alert">${state.error.status ? `${state.error.status} ${state.error.type}: ` : ""}${state.error.message}</p>` : null}
      ${state.result !== undefined ? html`<p class="hint">Result${state.ms !== null ? ` in ${state.ms} ms` : ""}:</p><${Result} value=${state.result} fnName=${fn.name} />` : null}
    </div>
  </article>`;
}

/** A function the caller may not call (its `<permissions>` name other groups): docs, no form. */
function LockedCard({ f }) {
  const hid = `fn-${f.name}`;
  return html`<article class="card fn locked" id=${hid} aria-labelledby=${hid + "-h"}>
    <h3 id=${hid + "-h"}><code>${f.name}(${f.params.map((p) => `${p.name}${p.required ? "" : "?"}: ${p.type}`).join(", ")})</code></h3>
    ${f.description ? html`<p class="fn-doc">${f.description}</p>` : null}
    ${f.permissions ? html`<p class="fn-permissions">Callable by members of: ${f.permissions.map((g) => html`<span class="pill">${g.group} (${["denied", "view", "read", "write"][g.level + 1] || g.level})</span>`)}</p>` : null}
    <p class="hint">You are not in a group that may call it.</p>
  </article>`;
}

// -- the source -------------------------------------------------------------------------------------
/** highlight.js HTML split into lines, closing and reopening spans that cross a line end. */
export function htmlLines(markup) {
  const out = [];
  let open = [], line = "";
  const re = /<span[^>]*>|<\/span>|\n|[^<\n]+|</g;
  let m;
  while ((m = re.exec(markup))) {
    const t = m[0];
    if (t === "\n") { out.push(line + "</span>".repeat(open.length)); line = open.join(""); }
    else { if (t.startsWith("<span")) open.push(t); else if (t === "</span>") open.pop(); line += t; }
  }
  out.push(line + "</span>".repeat(open.length));
  return out;
}

const escapeHtml = (s) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

function Source({ src }) {
  const lang = src.language === "csharp" ? "csharp" : src.language;
  const markup = lang && hljs.getLanguage(lang) ? hljs.highlight(src.text, { language: lang, ignoreIllegals: true }).value : escapeHtml(src.text);
  const lines = htmlLines(markup);
  if (lines.length > 1 && lines[lines.length - 1].replace(/<[^>]*>/g, "") === "") lines.pop(); // the final newline
  const mine = src.errors.filter((e) => e.line && (!e.file || e.file === src.file || src.file.endsWith(e.file)));
  const byLine = new Map();
  for (const e of mine) byLine.set(e.line, [...(byLine.get(e.line) || []), e]);
  return html`<div class="source hljs" role="region" aria-label=${"Source of " + src.file} tabindex="0">
    ${lines.map((l, i) => {
      const n = i + 1, errs = byLine.get(n);
      return html`<div class=${"line" + (errs ? " error-line" : "")} id=${"L" + n} data-line=${n}>
          <span class="ln" aria-hidden="true">${n}</span><code dangerouslySetInnerHTML=${{ __html: l || " " }}></code></div>
        ${errs ? errs.map((e) => html`<div class="line-error" role="note"><span class="ln" aria-hidden="true"></span>
          <span>${e.column ? `column ${e.column}: ` : ""}${e.message}</span></div>`) : null}`;
    })}
    ${src.truncated ? html`<p class="hint">The file is larger than 1 MB; only its beginning is shown.</p>` : null}
  </div>`;
}

// -- the page ---------------------------------------------------------------------------------------
async function load(wid, qid) {
  const [wf, doc] = await Promise.all([
    api.get(`/flow/workflows/${api.enc(wid)}`),
    api.get(`/flow/openapi/${api.enc(wid)}/${qid.split("/").map(api.enc).join("/")}`),
  ]);
  const query = wf.queries.find((q) => q.id === qid);
  if (!query) throw new Error(`Workflow ${wf.name} has no query ${qid}.`);
  // the source needs Read: a View caller is not sent on a request the API would refuse
  const src = wf.level >= READ ? await api.get(`/flow/source/${api.enc(wf.id)}/${qid.split("/").map(api.enc).join("/")}`) : null;
  return { wf, query, src, functions: functionsOf(doc, wf.id, qid) };
}

export default function QueryPage({ params, me }) {
  useCss("/ui/static/pages/workflow.css");
  useCss("/ui/vendor/uplot.css");
  useCss("/ui/vendor/highlight.css");
  const { wid, qid } = params;
  const { data, error, loading } = useData(() => load(wid, qid), [wid, qid]);
  if (error) return html`<${Page} title=${qid}><${ErrorBox} error=${error} /><//>`;
  if (loading || !data) return html`<${Page} title=${qid}><${Loading} what="the query" /><//>`;
  const { wf, query, src, functions } = data;
  const perms = Object.fromEntries((src?.functions || []).map((f) => [f.name, f.permissions]));
  const errors = src ? src.errors : query.errors;
  const canRead = wf.level >= READ;
  const callable = new Set(functions.map((f) => f.name));
  const locked = (src?.functions || []).filter((f) => !callable.has(f.name));
  return html`<${Page} title=${qid}>
    <p class="wf-meta"><a href=${"/ui/workflows/" + api.enc(wf.id)} data-route>${wf.name}</a> · ${query.language || "?"} · <code>${query.file}</code></p>
    ${errors.length ? html`<section class="card query-errors" aria-labelledby="q-errors"><h2 id="q-errors">${query.stale ? "Does not compile (its last good version still answers)" : "Does not compile"}</h2>
      <ul class="errors">${errors.map((e) => html`<li>${e.line ? html`<a href=${"#L" + e.line}><code class="where">${where(e)}</code></a>` : html`<code class="where">${where(e)}</code>`}
        <span class="error-text">${e.message}</span></li>`)}</ul></section>` : null}
    <section aria-labelledby="q-functions"><h2 id="q-functions">Functions</h2>
      ${!canRead ? html`<p class="notice" role="status" id="read-needed">You have ${wf.level === 0 ? "View" : "no"} access to ${wf.name}: calling its functions and reading their source needs Read.
          ${query.functions.length ? html` Functions: ${query.functions.map((f) => html`<code class="pill">${f}</code>`)}` : null}</p>`
        : functions.length || locked.length ? [
            ...functions.map((fn) => html`<${FunctionCard} key=${fn.name} fn=${fn} wid=${wf.id} qid=${qid} me=${me} permissions=${perms[fn.name]} />`),
            ...locked.map((f) => html`<${LockedCard} key=${f.name} f=${f} />`)]
        : html`<p>${errors.length && !query.stale ? "It does not compile: no functions to call." : "No functions to call."}</p>`}
    </section>
    ${src ? html`<section class="card" aria-labelledby="q-source"><h2 id="q-source">Source <span class="hint">(read-only)</span></h2><${Source} src=${src} /></section>` : null}
  <//>`;
}
