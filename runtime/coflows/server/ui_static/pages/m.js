// The M browser: the topics the caller may read (/ui/m), and one topic's entries (/ui/m/<topic>):
// paginated and searched by the server (GET /m/entries), updated live from the /live websocket,
// with add / edit (exchange) / remove for callers with Write (the API refuses anyway).
import { html, Page, useData, useEffect, useLayoutEffect, useRef, useState, ErrorBox, Loading, Link } from "../lib/ui.js";
import * as api from "../lib/api.js";

const CSS = "/ui/static/pages/m.css";
if (!document.querySelector(`link[rel=stylesheet][href="${CSS}"]`)) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = CSS;
  document.head.appendChild(link);
}

const SIZES = [50, 100];
const REFETCH_MS = 300; // live changes re-fetch the shown page at most ~3 times a second
const SEARCH_MS = 250; // typing pauses this long before the search runs
const SHOWN = 400; // characters of a value shown in the table (the editor has all of it)

/** Note that the page's content is drawn (two frames after the commit), for bench/flows_page.py. */
function markRendered(name) {
  requestAnimationFrame(() => requestAnimationFrame(() => {
    const app = (window.coflowsApp = window.coflowsApp || {});
    app.rendered = app.rendered || {};
    if (app.rendered[name] === undefined) {
      app.rendered[name] = performance.now();
      performance.mark(`coflows:${name}:rendered`);
    }
  }));
}

// one formatter for every row (what ui.js's when() shows; toLocaleString makes a formatter per call)
const DATE = new Intl.DateTimeFormat([], { year: "numeric", month: "numeric", day: "numeric", hour: "numeric",
  minute: "2-digit", second: "2-digit", hour12: false });
const when = (iso) => { const d = new Date(iso); return iso && !isNaN(d) ? DATE.format(d) : ""; };

const topicHref = (topic) => "/ui/m/" + api.enc(topic);
const compact = (value) => {
  const text = JSON.stringify(value);
  return text.length > SHOWN ? text.slice(0, SHOWN) + "…" : text;
};
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

// --- the topic list -------------------------------------------------------------------------

function Topics() {
  const topics = useData(() => api.get("/m/topics"), []);
  const [filter, setFilter] = useState("");
  const shown = (topics.data || []).filter((t) => t.Topic.toLowerCase().includes(filter.toLowerCase()));
  return html`<${Page} title="M topics">
    <p class="hint">Topics you may read, with their number of entries and your level.</p>
    <${ErrorBox} error=${topics.error} />
    ${topics.loading && !topics.data ? html`<${Loading} what="topics" />` : null}
    ${topics.data ? html`
      <div class="m-tools">
        <label for="topic-filter">Filter topics</label>
        <input id="topic-filter" type="search" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      </div>
      ${topics.data.length === 0 ? html`<p>No topic you may read has entries.</p>` : html`
      <div class="table-wrap"><table class="m-topics">
        <caption class="visually-hidden">M topics</caption>
        <thead><tr><th scope="col">Topic</th><th scope="col" class="num">Entries</th><th scope="col">Your level</th></tr></thead>
        <tbody>${shown.map((t) => html`<tr key=${t.Topic}>
          <td><${Link} href=${topicHref(t.Topic)}>${t.Topic}<//></td>
          <td class="num">${t.Count.toLocaleString()}</td><td>${t.Level || ""}</td></tr>`)}</tbody>
      </table></div>`}` : null}
  <//>`;
}

// --- live updates -------------------------------------------------------------------------------

/** Subscribe to `topic` on /live; `onChange(content)` for each change. Reconnects after a drop.
 *  Returns "connecting" | "live" | "offline" | an error message from the server. */
function useLive(topic, onChange) {
  const [status, setStatus] = useState("connecting");
  const handler = useRef(onChange);
  handler.current = onChange;
  useEffect(() => {
    let ws = null, stopped = false, retry = null, delay = 500;
    const connect = () => {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      ws = new WebSocket(`${scheme}//${location.host}${api.withKey("/live")}`);
      setStatus("connecting");
      ws.onopen = () => {
        ws.send(JSON.stringify({ Type: 1, Content: topic }));
        ws.send(JSON.stringify({ Type: 15, Content: "subscribed" })); // echoed once the subscription is active
      };
      ws.onmessage = (e) => {
        let msg;
        try { msg = JSON.parse(e.data); } catch { return; }
        if (msg.Type === 15) {
          delay = 500;
          setStatus("live");
          handler.current(null); // (re)connected: changes may have been missed, re-read the page
        } else if (msg.Type === 14 && msg.Content && msg.Content.TopicID === topic) {
          handler.current(msg.Content);
        } else if (msg.Type === 0) {
          setStatus((msg.Content && msg.Content.Error) || "refused");
        }
      };
      ws.onclose = () => {
        if (stopped) return;
        setStatus((s) => (s === "live" || s === "connecting" ? "offline" : s));
        retry = setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      };
    };
    connect();
    return () => { stopped = true; clearTimeout(retry); if (ws) ws.close(); };
  }, [topic]);
  return status;
}

// --- a topic ------------------------------------------------------------------------------------

function AddForm({ topic, onDone }) {
  const [text, setText] = useState("");
  const [problem, setProblem] = useState(null);
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setNote("");
    let value;
    try { value = JSON.parse(text); } catch (err) { setProblem(`Not JSON: ${err.message}`); return; }
    setProblem(null);
    setBusy(true);
    try {
      const r = await api.post(api.q("/m/add", { type: topic }), value);
      setNote(r.Created ? `Added entry ${r.ID}.` : `That value is already entry ${r.ID}; nothing added.`);
      setText("");
      onDone();
    } catch (err) {
      setProblem(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<details class="card m-add">
    <summary>Add an entry</summary>
    <form class="stack" onSubmit=${submit} aria-describedby="m-add-help">
      <label for="m-add-value">Value (JSON)</label>
      <textarea id="m-add-value" rows="4" value=${text} onInput=${(e) => setText(e.target.value)}
        aria-invalid=${problem ? "true" : undefined} aria-describedby=${problem ? "m-add-error" : undefined}
        placeholder='{"item": "tea", "qty": 2}'></textarea>
      <p id="m-add-help" class="hint">Any JSON value. An equal value already in the topic is not added twice.</p>
      ${problem ? html`<p id="m-add-error" class="error" role="alert">${problem}</p>` : null}
      <div><button type="submit" disabled=${busy}>Add</button></div>
      <p class="hint" role="status">${note}</p>
    </form>
  </details>`;
}

function EditRow({ topic, entry, cols, onClose, onDone }) {
  const [text, setText] = useState(JSON.stringify(entry.value, null, 2));
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const area = useRef(null);
  useEffect(() => { area.current && area.current.focus(); }, []);
  const save = async (e) => {
    e.preventDefault();
    let value;
    try { value = JSON.parse(text); } catch (err) { setProblem(`Not JSON: ${err.message}`); return; }
    setBusy(true);
    try {
      await api.post(api.q("/m/exchange", { type: topic }), { ID: entry.id, Value: value, Version: entry.version });
      onDone();
    } catch (err) {
      setProblem(err.status === 409 ? `${err.message}` : err.message);
      setBusy(false);
    }
  };
  const id = "m-edit-" + entry.id;
  return html`<tr class="m-editor"><td colspan=${cols}>
    <form class="stack" onSubmit=${save}>
      <label for=${id}>New value of entry ${entry.id.slice(0, 8)} (JSON, version ${entry.version})</label>
      <textarea id=${id} ref=${area} rows="5" value=${text} onInput=${(e) => setText(e.target.value)}
        aria-invalid=${problem ? "true" : undefined}></textarea>
      ${problem ? html`<p class="error" role="alert">${problem}</p>` : null}
      <div class="m-row-actions"><button type="submit" disabled=${busy}>Save</button>
        <button type="button" class="secondary" onClick=${onClose}>Cancel</button></div>
    </form>
  </td></tr>`;
}

function EntryRow({ topic, entry, write, flash, editing, confirming, setEditing, setConfirming, onDone, onError }) {
  const remove = async () => {
    try {
      await api.post(api.q("/m/remove", { type: topic }), { ID: entry.id, Version: entry.version });
      setConfirming(null);
      onDone(`Removed entry ${entry.id}.`);
    } catch (err) {
      onError(err);
    }
  };
  const yes = useRef(null);
  // before paint: Preact reuses the focused Remove button as Cancel, so focus must move at once
  useLayoutEffect(() => { if (confirming && yes.current) yes.current.focus(); }, [confirming]);
  return html`<tr class=${flash ? "flash" : ""} data-id=${entry.id}>
    <td class="m-id" data-label="ID"><code title=${entry.id}>${entry.id}</code></td>
    <td class="m-value" data-label="Value"><code>${compact(entry.value)}</code></td>
    <td class="num m-version" data-label="Version">${entry.version}</td>
    <td class="m-when" data-label="Updated">${when(entry.updated)}</td>
    ${write ? html`<td class="m-actions" data-label=""><div class="m-row-actions">${confirming ? html`
        <span>Remove this entry?</span>
        <button type="button" class="danger" ref=${yes} onClick=${remove}>Yes, remove</button>
        <button type="button" class="secondary" onClick=${() => setConfirming(null)}>Cancel</button>` : html`
        <button type="button" class="secondary" aria-expanded=${editing} onClick=${() => setEditing(editing ? null : entry.id)}
          aria-label=${"Edit entry " + entry.id}>Edit</button>
        <button type="button" class="secondary" onClick=${() => setConfirming(entry.id)}
          aria-label=${"Remove entry " + entry.id}>Remove</button>`}</div></td>` : null}
  </tr>`;
}

function Pager({ offset, limit, total, shown, go }) {
  const from = shown ? offset + 1 : 0, to = offset + shown;
  return html`<nav class="m-pager" aria-label="Pages">
    <button type="button" class="secondary" disabled=${offset === 0} onClick=${() => go(Math.max(0, offset - limit))}>Previous</button>
    <span class="m-range">${from.toLocaleString()}–${to.toLocaleString()} of ${total.toLocaleString()}</span>
    <button type="button" class="secondary" disabled=${offset + limit >= total} onClick=${() => go(offset + limit)}>Next</button>
  </nav>`;
}

function Topic({ topic, query }) {
  const initialLimit = SIZES.includes(Number(query.limit)) ? Number(query.limit) : SIZES[0];
  const [limit, setLimit] = useState(initialLimit);
  const [offset, setOffset] = useState(Math.max(0, parseInt(query.offset, 10) || 0));
  const [search, setSearch] = useState(query.q || ""); // what the box holds
  const [q, setQ] = useState(query.q || ""); // what was searched (debounced)
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [flash, setFlash] = useState(new Set());
  const [announce, setAnnounce] = useState("");
  const [note, setNote] = useState("");
  const [editing, setEditing] = useState(null);
  const [confirming, setConfirming] = useState(null);
  // the fetch loop: one request at a time, at most one every REFETCH_MS when live changes arrive
  const state = useRef({ busy: false, dirty: false, timer: null, last: 0, changed: new Set(), adds: 0, edits: 0, removes: 0 });
  const params = useRef({ limit, offset, q });
  params.current = { limit, offset, q };

  const load = async () => {
    const s = state.current;
    if (s.busy) { s.dirty = true; return; }
    s.busy = true; s.dirty = false; s.last = Date.now();
    const p = params.current;
    const same = () => p.offset === params.current.offset && p.limit === params.current.limit && p.q === params.current.q;
    // the changes this fetch will show; those arriving while it runs wait for the next one
    const changed = s.changed, counts = [s.adds, s.edits, s.removes];
    s.changed = new Set();
    s.adds = s.edits = s.removes = 0;
    let again = false; // not shown (another page was asked for meanwhile): its changes go to the next fetch
    try {
      const page = await api.get(api.q("/m/entries", { type: topic, offset: p.offset, limit: p.limit, q: p.q }));
      if (!same()) {
        again = true;
      } else if (page.entries.length === 0 && page.offset > 0 && page.total > 0) { // the page emptied: the last one
        setOffset(Math.floor((page.total - 1) / p.limit) * p.limit);
        again = true;
      } else {
        setData(page);
        setError(null);
        if (changed.size) setFlash(new Set(page.entries.map((e) => e.id).filter((id) => changed.has(id))));
        const [adds, edits, removes] = counts, parts = [];
        if (adds) parts.push(plural(adds, "new entry", "new entries"));
        if (edits) parts.push(plural(edits, "entry changed", "entries changed"));
        if (removes) parts.push(plural(removes, "entry removed", "entries removed"));
        if (parts.length) setAnnounce(parts.join(", "));
      }
    } catch (err) {
      setError(err);
    } finally {
      s.busy = false;
      if (again) {
        for (const id of changed) s.changed.add(id);
        s.adds += counts[0]; s.edits += counts[1]; s.removes += counts[2];
      }
      if (s.dirty) {
        if (same()) schedule(); else load(); // live changes wait their turn; a new page does not
      }
    }
  };
  const schedule = () => {
    const s = state.current;
    if (s.timer) return;
    s.timer = setTimeout(() => { s.timer = null; load(); }, Math.max(0, REFETCH_MS - (Date.now() - s.last)));
  };
  useEffect(() => () => clearTimeout(state.current.timer), []);

  // the page, the size or the search changed: fetch now, keep the URL in step (without a new history entry)
  useEffect(() => {
    load();
    const url = new URL(location.href);
    for (const [k, v] of Object.entries({ offset: offset || "", limit: limit === SIZES[0] ? "" : limit, q })) {
      if (v === "" || v === undefined) url.searchParams.delete(k); else url.searchParams.set(k, v);
    }
    history.replaceState(history.state, "", url.pathname + url.search);
  }, [offset, limit, q]);

  // debounce the search box
  useEffect(() => {
    if (search === q) return undefined;
    const t = setTimeout(() => { setQ(search); setOffset(0); }, SEARCH_MS);
    return () => clearTimeout(t);
  }, [search]);

  useEffect(() => {
    if (!flash.size) return undefined;
    const t = setTimeout(() => setFlash(new Set()), 2000);
    return () => clearTimeout(t);
  }, [flash]);

  const live = useLive(topic, (change) => {
    const s = state.current;
    if (change) {
      if (change.Type === 1) s.adds += 1; else if (change.Type === 3) s.edits += 1; else if (change.Type === 4) s.removes += 1;
      if (change.Type !== 4) s.changed.add(change.ID);
    }
    schedule();
  });

  useEffect(() => { if (data) markRendered("m"); }, [data]);

  const write = data && data.level === "write";
  const entries = data ? data.entries : [];
  const cols = write ? 5 : 4;
  const after = (message) => { if (message) setNote(message); setEditing(null); schedule(); };
  const liveText = live === "live" ? "Live" : live === "connecting" ? "Connecting…" : live === "offline" ? "Offline (reconnecting)" : `Live updates refused: ${live}`;

  return html`<${Page} title=${"M: " + topic} actions=${html`<span class=${"m-live " + (live === "live" ? "on" : "off")}
      title="Updates from the /live websocket">${liveText}</span>`}>
    <p><${Link} href="/ui/m">All topics<//>${data ? html` · your level: ${data.level}` : null}</p>
    <div class="visually-hidden" aria-live="polite" role="status" id="m-announce">${announce}</div>
    <${ErrorBox} error=${error} />
    ${write ? html`<${AddForm} topic=${topic} onDone=${() => schedule()} />` : null}
    <div class="m-tools" role="search">
      <label for="m-search">Search entries</label>
      <input id="m-search" type="search" value=${search} maxlength="200" placeholder="text in the value or id"
        onInput=${(e) => setSearch(e.target.value)} />
      <label for="m-size">Per page</label>
      <select id="m-size" value=${limit} onChange=${(e) => { setLimit(Number(e.target.value)); setOffset(0); }}>
        ${SIZES.map((n) => html`<option value=${n}>${n}</option>`)}
      </select>
    </div>
    ${note ? html`<p class="hint" role="status">${note}</p>` : null}
    ${!data ? (error ? null : html`<${Loading} what="entries" />`) : html`
      <${Pager} offset=${data.offset} limit=${data.limit} total=${data.total} shown=${entries.length} go=${setOffset} />
      ${entries.length === 0 ? html`<p>${data.q ? `No entry matches “${data.q}”.` : "This topic has no entries."}</p>` : html`
      <div class="table-wrap"><table class="m-entries">
        <caption class="visually-hidden">Entries ${data.offset + 1} to ${data.offset + entries.length} of ${data.total}</caption>
        <thead><tr><th scope="col">ID</th><th scope="col">Value</th><th scope="col" class="num">Version</th>
          <th scope="col">Updated</th>${write ? html`<th scope="col">Actions</th>` : null}</tr></thead>
        <tbody>${entries.map((e) => html`
          <${EntryRow} key=${e.id + ":" + e.version} topic=${topic} entry=${e} write=${write} flash=${flash.has(e.id)}
            editing=${editing === e.id} confirming=${confirming === e.id} setEditing=${setEditing} setConfirming=${setConfirming}
            onDone=${after} onError=${setError} />
          ${write && editing === e.id ? html`<${EditRow} key=${"edit:" + e.id} topic=${topic} entry=${e} cols=${cols}
            onClose=${() => setEditing(null)} onDone=${() => after(`Saved entry ${e.id}.`)} />` : null}`)}</tbody>
      </table></div>`}`}
  <//>`;
}

export default function M({ params, query }) {
  return params.topic ? html`<${Topic} topic=${params.topic} query=${query} />` : html`<${Topics} />`;
}
