// The coflows web app: one page (app.html) for every /ui/… path, a router that loads each page's
// module on demand, the navigation, and who is logged in. Pages only use the public API (lib/api.js).
import { html, render, useEffect, useState } from "./lib/ui.js";
import * as api from "./lib/api.js";

// path pattern → page module (pages/<name>.js, default export: a component taking {params, query, me})
const ROUTES = [
  ["/ui", "dashboard"],
  ["/ui/login", "login"],
  ["/ui/workflows/:wid", "workflow"],
  ["/ui/workflows/:wid/queries/*qid", "query"],
  ["/ui/agents", "agents"],
  ["/ui/m", "m"],
  ["/ui/m/*topic", "m"],
  ["/ui/flows", "flows"],
  ["/ui/flows/runs/:run", "run"],
  ["/ui/logs", "logs"],
  ["/ui/admin", "admin"],
  ["/ui/profile", "profile"],
];

const NAV = [
  ["/ui", "Dashboard"], ["/ui/agents", "Agents"], ["/ui/m", "M"], ["/ui/flows", "Flow runs"], ["/ui/logs", "Logs"],
];

function match(path) {
  const clean = path.replace(/\/+$/, "") || "/ui";
  for (const [pattern, page] of ROUTES) {
    const names = [];
    const re = new RegExp("^" + pattern.replace(/[.]/g, "\\.").replace(/:(\w+)|\*(\w+)/g, (_, a, b) => {
      names.push(a || b);
      return a ? "([^/]+)" : "(.+)";
    }) + "$");
    const m = clean.match(re);
    if (m) {
      const params = {};
      names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
      return { page, params };
    }
  }
  return { page: "notfound", params: {} };
}

const GUEST = "coflows.guest";

/** Go to an app path without reloading (keeps ?_cokey= when the page has one). */
export function navigate(href, replace = false) {
  const url = new URL(href, location.origin);
  const key = new URLSearchParams(location.search).get("_cokey");
  if (key && !url.searchParams.has("_cokey")) url.searchParams.set("_cokey", key);
  if (url.pathname !== "/ui" && !url.pathname.startsWith("/ui/")) {  // not a page of the app (/lab): load it
    location[replace ? "replace" : "assign"](url.pathname + url.search + url.hash);
    return;
  }
  history[replace ? "replaceState" : "pushState"](null, "", url.pathname + url.search + url.hash);
  window.dispatchEvent(new Event("coflows:navigate"));
}
window.coflowsNavigate = navigate;

function useLocation() {
  const [loc, setLoc] = useState(location.pathname + location.search);
  useEffect(() => {
    const update = () => setLoc(location.pathname + location.search);
    window.addEventListener("popstate", update);
    window.addEventListener("coflows:navigate", update);
    return () => {
      window.removeEventListener("popstate", update);
      window.removeEventListener("coflows:navigate", update);
    };
  }, []);
  return loc;
}

const modules = {};
function usePage(name) {
  const [mod, setMod] = useState(modules[name] || null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setError(null);
    if (name === null) { setMod(null); return undefined; }  // not known yet which page (who is calling?)
    if (modules[name]) { setMod(modules[name]); return undefined; }
    setMod(null);
    // a page asked for earlier may load later (the dashboard's module, asked before /auth/me said
    // "log in"): only the page still wanted may be shown
    let wanted = true;
    import(`./pages/${name}.js`).then((m) => { modules[name] = m; if (wanted) setMod(m); },
                                      (e) => { if (wanted) setError(e); });
    return () => { wanted = false; };
  }, [name]);
  return { mod, error };
}

function Nav({ me, path, onLogout }) {
  const [open, setOpen] = useState(false);
  const items = [...NAV, ...(me && me.admin ? [["/ui/admin", "Admin"]] : [])];
  const current = (href) => (href === "/ui" ? path === "/ui" || path === "/ui/" : path.startsWith(href));
  return html`<header class="top">
    <a class="brand" href="/ui" data-route>coflows</a>
    <button class="menu-toggle" aria-expanded=${open} aria-controls="main-nav" onClick=${() => setOpen(!open)}>Menu</button>
    <nav id="main-nav" aria-label="Main" class=${open ? "open" : ""}>
      <ul>${items.map(([href, label]) => html`<li><a href=${href} data-route
          aria-current=${current(href) ? "page" : undefined} onClick=${() => setOpen(false)}>${label}</a></li>`)}</ul>
    </nav>
    <div class="who">
      ${me ? html`<a href="/ui/profile" data-route title="Your profile and API keys">${me.name || me.email || me.id}</a>
                  ${me.via === "session" ? html`<button class="link" onClick=${onLogout}>Log out</button>` : null}`
           : html`<a href="/ui/login" data-route>Log in</a>`}
    </div>
  </header>`;
}

function App() {
  const loc = useLocation();
  const path = loc.split("?")[0];
  const [me, setMe] = useState(undefined); // undefined: not known yet; null: anonymous
  const refreshMe = () => api.me().then(setMe, () => setMe(null));
  useEffect(() => { refreshMe(); }, []);
  let { page, params } = match(path);
  const guest = sessionStorage.getItem(GUEST) === "1";
  const gated = me === null && !guest && page !== "login";
  if (gated) page = "login";
  const { mod, error } = usePage(me === undefined ? null : page);
  if (me === undefined) return html`<p class="loading" role="status">Loading…</p>`;
  const query = Object.fromEntries(new URLSearchParams(loc.split("?")[1] || ""));
  if (gated && !query.next) query.next = loc;  // a shared deep link comes back after the login (or as a guest)
  const onLogin = (who) => { sessionStorage.removeItem(GUEST); setMe(who); };
  const onGuest = () => { sessionStorage.setItem(GUEST, "1"); navigate(query.next || "/ui", true); };
  const onLogout = async () => { await api.logout().catch(() => {}); setMe(null); navigate("/ui/login"); };
  const Page = mod && mod.default;
  return html`
    <a class="skip" href="#main">Skip to content</a>
    ${page === "login" ? null : html`<${Nav} me=${me} path=${path} onLogout=${onLogout} />`}
    <main id="main" tabindex="-1">
      ${error ? html`<p class="error" role="alert">This page failed to load: ${error.message}</p>`
              : Page ? html`<${Page} key=${path} params=${params} query=${query} me=${me}
                                 onLogin=${onLogin} onGuest=${onGuest} refreshMe=${refreshMe} />`
              : html`<p class="loading" role="status">Loading…</p>`}
    </main>`;
}

// links marked data-route stay in the app
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-route]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  const url = new URL(a.href, location.origin);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash);
  document.getElementById("main")?.focus();
});

render(html`<${App} />`, document.getElementById("app"));
