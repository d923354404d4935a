// What the flow pages (pages/flows.js, pages/run.js) share: their stylesheet, state badges,
// the bar of a run's task states, and short times.
import { html } from "../lib/ui.js";
import { COLORS } from "./states.js";

const CSS = "/ui/static/flows/flows.css";

/** Link the flow pages' stylesheet once (the app loads page styles on demand). */
export function flowsCss() {
  if (document.querySelector(`link[href="${CSS}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = CSS;
  document.head.append(link);
}

/** A state as a coloured badge (colours in flows.css, the same as the DAG's). */
export function State({ state, children }) {
  return html`<span class="fstate" data-state=${state}>${children ?? state}</span>`;
}

/** The tasks of a run by state: a bar of coloured parts and the counts in words. */
export function CountsBar({ counts = {} }) {
  const entries = Object.entries(counts);
  const total = entries.reduce((a, [, n]) => a + n, 0) || 1;
  const text = entries.map(([s, n]) => `${n} ${s}`).join(", ");
  return html`<span class="bar" aria-hidden="true" title=${text}>${entries.map(([s, n]) =>
    html`<span style=${`flex: ${n / total}; background: ${COLORS[s] || "#eee"}`}></span>`)}</span><span class="counts">${text}</span>`;
}

/** Short local time of an ISO timestamp, to the millisecond ("" for none). */
export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

/** A task's run time in seconds ("" until it has finished). */
export function seconds(t) {
  if (!t.started_at || !t.finished_at) return "";
  return ((new Date(t.finished_at) - new Date(t.started_at)) / 1000).toFixed(3);
}

/** The "live" indicator of a page following an event stream. */
export function Live({ state }) {
  const text = { live: "● live", connecting: "connecting…", reconnecting: "reconnecting…" }[state] || state;
  return html`<span id="live" class="live" data-live=${state} role="status">${text}</span>`;
}
