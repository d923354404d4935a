// The app's one door to the server: the public REST API, with the session cookie (and its CSRF
// token on writes) or, for links shared by programs, an API key from the page URL (?_cokey=KEY).

const KEY = new URLSearchParams(location.search).get("_cokey");
let csrf = null;

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message);
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

/** A server URL with the page's key in the query (EventSource and WebSocket cannot send headers). */
export function withKey(path) {
  if (!KEY) return path;
  return path + (path.includes("?") ? "&" : "?") + "_cokey=" + encodeURIComponent(KEY);
}

/** Keep the session's CSRF token (from /auth/login or /auth/me). */
export function setCsrf(token) { csrf = token || null; }

async function request(method, path, body, { raw = false } = {}) {
  const headers = {};
  if (KEY) headers["x-api-key"] = KEY;
  if (method !== "GET" && method !== "HEAD" && csrf) headers["x-csrf-token"] = csrf;
  let payload;
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, cache: "no-store", credentials: "same-origin" });
  if (raw && response.ok) return response;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(response.status, err.type || "HttpError", err.message || `${response.status} ${response.statusText}`, data);
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const getRaw = (path) => request("GET", path, undefined, { raw: true });

/** Who is logged in (null when anonymous); keeps the CSRF token. */
export async function me() {
  try {
    const who = await get("/auth/me");
    setCsrf(who.csrf);
    return who;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function login(email, password) {
  const answer = await post("/auth/login", { email, password });
  setCsrf(answer.csrf);
  return answer;
}

export async function logout() {
  await post("/auth/logout");
  setCsrf(null);
}

/** Path with its query string: q("/flow/agent/x/runs", {limit: 10}). */
export function q(path, params = {}) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") sp.set(k, v);
  const s = sp.toString();
  return s ? `${path}?${s}` : path;
}

export const enc = encodeURIComponent;
