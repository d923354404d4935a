// The live log (/ui/logs, ?workflow=ID): what print / console.* write in a workflow's calls, agents
// and flows, tagged with the function, as it happens (EventSource on /flow/logs/{wid}: the latest
// buffered lines first). Filter by text, pause and resume (lines that arrive while paused are held
// and shown on resume), clear.
import { html, Page, useData, useEffect, useRef, useState, ErrorBox, Loading } from "../lib/ui.js";
import * as api from "../lib/api.js";

const CSS = "/ui/static/pages/agents.css"; // the agents and logs pages share one small stylesheet
if (!document.querySelector(`link[rel=stylesheet][href="${CSS}"]`)) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = CSS;
  document.head.appendChild(link);
}

const SHOWN = 1000; // lines kept on the page
const HELD = 5000; // lines held while paused (older ones are dropped, and counted)

function time(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

/** The stream of one workflow: {lines, state, dropped, held, paused, setPaused, clear}. */
function useLogStream(wid) {
  const [lines, setLines] = useState([]);
  const [state, setState] = useState("connecting");
  const [error, setError] = useState(null);
  const [paused, setPausedState] = useState(false);
  const [held, setHeld] = useState(0);
  const pending = useRef([]); // arrived, not drawn yet (drawn once per frame)
  const hold = useRef([]); // arrived while paused
  const pausedRef = useRef(false);
  const frame = useRef(0);

  const flush = () => {
    frame.current = 0;
    const add = pending.current;
    pending.current = [];
    if (add.length) setLines((old) => old.concat(add).slice(-SHOWN));
  };
  const push = (item) => {
    if (pausedRef.current) {
      hold.current.push(item);
      if (hold.current.length > HELD) hold.current.splice(0, hold.current.length - HELD);
      setHeld(hold.current.length);
      return;
    }
    pending.current.push(item);
    if (!frame.current) frame.current = requestAnimationFrame(flush);
  };

  useEffect(() => {
    if (!wid) return undefined;
    setLines([]);
    setError(null);
    setState("connecting");
    hold.current = [];
    setHeld(0);
    let source = null;
    let alive = true;
    // ask once with fetch: a refusal (401/403/404) is shown as a message, which EventSource cannot
    api.get(api.q(`/flow/logs/${api.enc(wid)}`, { format: "json", limit: 1 })).then(() => {
      if (!alive) return;
      source = new EventSource(api.withKey(`/flow/logs/${api.enc(wid)}`));
      source.onopen = () => setState("live");
      source.onerror = () => setState(source.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
      source.onmessage = (e) => { try { push(JSON.parse(e.data)); } catch { /* not JSON: ignore */ } };
      source.addEventListener("dropped", (e) => {
        try {
          const d = JSON.parse(e.data);
          push({ seq: `dropped-${Date.now()}`, dropped: d.dropped });
        } catch { /* ignore */ }
      });
    }, (e) => { if (alive) { setError(e); setState("closed"); } });
    return () => {
      alive = false;
      if (source) source.close();
      if (frame.current) cancelAnimationFrame(frame.current);
      frame.current = 0;
      pending.current = [];
    };
  }, [wid]);

  const setPaused = (p) => {
    pausedRef.current = p;
    setPausedState(p);
    if (!p && hold.current.length) {
      const add = hold.current;
      hold.current = [];
      setHeld(0);
      setLines((old) => old.concat(add).slice(-SHOWN));
    }
  };
  const clear = () => { pending.current = []; setLines([]); };
  return { lines, state, error, paused, setPaused, held, clear };
}

function Line({ e }) {
  if (e.dropped) {
    return html`<li class="log-line dropped">… ${e.dropped} line${e.dropped > 1 ? "s" : ""} dropped: this page fell behind</li>`;
  }
  return html`<li class=${"log-line " + (e.level || "").toLowerCase()}>
    <time datetime=${e.time}>${time(e.time)}</time>
    ${e.level && e.level !== "INFO" ? html`<span class="level">${e.level}</span>` : null}
    <span class="pill fn" title=${e.tag}>${e.function || e.tag}</span>
    <span class="text">${e.line}</span>
  </li>`;
}

export default function Logs({ query }) {
  const workflows = useData(() => api.get("/flow/workflows"), []);
  const list = workflows.data || [];
  const wid = query.workflow || (list[0] && list[0].id) || "";
  const stream = useLogStream(workflows.data ? wid : "");
  const [text, setText] = useState("");
  const box = useRef(null);
  const stick = useRef(true); // follow new lines while scrolled to the bottom
  const needle = text.trim().toLowerCase();
  const shown = needle
    ? stream.lines.filter((e) => e.dropped || `${e.tag} ${e.line}`.toLowerCase().includes(needle))
    : stream.lines;
  useEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [shown.length]);
  const onScroll = () => {
    const el = box.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  };
  const choose = (e) => window.coflowsNavigate(api.q("/ui/logs", { workflow: e.target.value }), true);
  const name = (list.find((w) => w.id === wid) || {}).name || wid;
  return html`<${Page} title="Logs">
    <${ErrorBox} error=${workflows.error} />
    ${workflows.loading && !workflows.data ? html`<${Loading} what="workflows" />` : null}
    ${workflows.data && !list.length ? html`<p>No workflow you may see.</p>` : null}
    ${list.length ? html`<div class="toolbar">
      <label for="log-workflow">Workflow</label>
      <select id="log-workflow" value=${wid} onChange=${choose}>
        ${list.map((w) => html`<option value=${w.id}>${w.name || w.id}</option>`)}
      </select>
      <label for="log-filter">Filter</label>
      <input id="log-filter" type="search" value=${text} onInput=${(e) => setText(e.target.value)}
             placeholder="text or function" />
      <button class="secondary" aria-pressed=${stream.paused} onClick=${() => stream.setPaused(!stream.paused)}>
        ${stream.paused ? "Resume" : "Pause"}</button>
      <button class="secondary" onClick=${stream.clear}>Clear</button>
      <span class=${"stream-state " + stream.state} role="status">${stream.state}${stream.paused && stream.held ? ` · ${stream.held} held` : ""}</span>
    </div>` : null}
    <${ErrorBox} error=${stream.error} />
    ${wid && !stream.error ? html`<section aria-labelledby="log-title">
      <h2 id="log-title">Output of ${name}${needle ? html` <span class="hint">(${shown.length} of ${stream.lines.length} lines match)</span>` : null}</h2>
      <ol class="log" ref=${box} onScroll=${onScroll} role="log" aria-live="polite" aria-relevant="additions"
          aria-label=${`Live output of ${name}`} tabindex="0">
        ${shown.map((e) => html`<${Line} key=${e.seq} e=${e} />`)}
      </ol>
      ${!stream.lines.length ? html`<p class="hint">No output yet: what print and console.log write in this workflow's calls appears here.</p>` : null}
    </section>` : null}
  <//>`;
}
