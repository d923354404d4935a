// Talking to the coflows server from a page: the API key travels with every call.
// The key comes from the page URL (?_cokey=KEY): fetch sends it as x-api-key; EventSource
// cannot send headers, so event streams get it back as the _cokey query parameter.

const KEY = new URLSearchParams(location.search).get("_cokey");

export const TERMINAL = new Set(["finished", "failed", "cancelled", "interrupted"]);

/** A server URL, with the key in the query when the page has one (for EventSource and links). */
export function withKey(path) {
  if (!KEY) return path;
  return path + (path.includes("?") ? "&" : "?") + "_cokey=" + encodeURIComponent(KEY);
}

/** GET a JSON resource; a failed call throws an Error carrying the server's message and status. */
export async function getJson(path) {
  const headers = KEY ? { "x-api-key": KEY } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const err = new Error(body?.error?.message || `${response.status} ${response.statusText}`);
    err.status = response.status;
    throw err;
  }
  return body;
}

/** Short local time of an ISO timestamp ("" for none). */
export function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

/** Create an element: el("td", {class: "x", dataset: {node: "a"}}, "text", child…). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}
