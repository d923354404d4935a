// What every page shares: htm bound to Preact, hooks, and a few small pieces (title, errors,
// loading state, data loading, times).
import { h, render } from "preact";
import { useEffect, useLayoutEffect, useState, useCallback, useRef, useMemo } from "preact/hooks";
import { html } from "htm/preact";

export { h, render, html, useEffect, useLayoutEffect, useState, useCallback, useRef, useMemo };

/** Set the document title ("coflows · …") while the page is shown. */
export function useTitle(title) {
  useEffect(() => { document.title = title ? `${title} · coflows` : "coflows"; }, [title]);
}

/** Load data with `fn` (re-run when `deps` change): {data, error, loading, reload}. */
export function useData(fn, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let alive = true;
    setState((s) => ({ ...s, loading: true }));
    Promise.resolve().then(fn).then(
      (data) => alive && setState({ data, error: null, loading: false }),
      (error) => alive && setState({ data: null, error, loading: false }));
    return () => { alive = false; };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message || String(error)}</p>`;
}

export function Loading({ what = "" }) {
  return html`<p class="loading" role="status">Loading${what ? " " + what : ""}…</p>`;
}

/** A page's frame: its h1 and content; `actions` go right of the title. */
export function Page({ title, actions, children }) {
  useTitle(title);
  return html`<section class="page" aria-labelledby="page-title">
    <div class="page-head"><h1 id="page-title">${title}</h1>${actions ? html`<div class="actions">${actions}</div>` : null}</div>
    ${children}
  </section>`;
}

/** A link inside the app (the router handles it without reloading). */
export function Link({ href, children, ...rest }) {
  return html`<a href=${href} data-route ...${rest}>${children}</a>`;
}

/** Local date and time of an ISO timestamp ("" for none). */
export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString([], { hour12: false });
}

/** A level number or name as a word. */
export const LEVELS = { "-2": "invited", "-1": "denied", "0": "view", "1": "read", "2": "write" };
export function levelName(level) {
  return typeof level === "number" ? (LEVELS[String(level)] || String(level)) : String(level);
}
