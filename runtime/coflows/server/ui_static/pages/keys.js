// What the admin page and the profile page share: their stylesheet, a table of API keys with Revoke
// buttons, a form that makes a key, and the new key shown once with a Copy button. (Not a page of
// its own: the router never loads it by path.)
import { html, useState, useRef, useEffect, when } from "../lib/ui.js";

const CSS = "/ui/static/pages/admin.css";
if (!document.querySelector(`link[rel=stylesheet][href="${CSS}"]`)) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = CSS;
  document.head.appendChild(link);
}

/** Run `fn` and report: {run, busy, error, status, setStatus}; `fn` may return a status message. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState("");
  const run = async (fn) => {
    setBusy(true);
    setError(null);
    setStatus("");
    try {
      const message = await fn();
      if (typeof message === "string") setStatus(message);
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, status, setStatus };
}

/** A status line (polite live region) and an error (alert) of an action. */
export function Outcome({ action, id }) {
  return html`<p class="status" role="status" aria-live="polite" id=${id}>${action.status}</p>
    ${action.error ? html`<p class="error" role="alert">${action.error.message}</p>` : null}`;
}

/** The API keys (never the keys themselves: IDs, labels, times) with a Revoke button each. */
export function KeyTable({ keys, onRevoke, busy, caption }) {
  if (!keys.length) return html`<p class="hint">No API keys.</p>`;
  return html`<div class="table-wrap"><table class="keys stacked">
    <caption class="visually-hidden">${caption}</caption>
    <thead><tr><th scope="col">ID</th><th scope="col">Label</th><th scope="col">Created</th>
      <th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
    <tbody>${keys.map((k) => html`<tr key=${k.id} data-key-id=${k.id}>
      <td data-label="ID"><code>${k.id}</code></td><td data-label="Label">${k.label}</td>
      <td data-label="Created">${when(k.created)}</td><td data-label="Last used">${when(k.last_used) || "never"}</td>
      <td data-label="State">${k.revoked ? html`<span class="pill stopped">revoked ${when(k.revoked)}</span>` : html`<span class="pill ok">active</span>`}</td>
      <td>${k.revoked ? null : html`<button class="danger small" disabled=${busy}
          aria-label=${`Revoke key ${k.id}${k.label ? " (" + k.label + ")" : ""}`} onClick=${() => onRevoke(k)}>Revoke</button>`}</td>
    </tr>`)}</tbody>
  </table></div>`;
}

/** A form making a key with a label: `onMake(label)` resolves to {id, key}. */
export function NewKeyForm({ onMake, busy, idPrefix }) {
  const [label, setLabel] = useState("");
  const submit = async (e) => {
    e.preventDefault();
    if (await onMake(label.trim())) setLabel("");
  };
  return html`<form class="inline" onSubmit=${submit} aria-label="New API key">
    <label for=${idPrefix + "-label"}>Label</label>
    <input id=${idPrefix + "-label"} maxlength="200" placeholder="what it is for" value=${label}
           onInput=${(e) => setLabel(e.target.value)} />
    <button type="submit" disabled=${busy}>Create key</button>
  </form>`;
}

/** The key just made, shown once, with a Copy button; gone when dismissed or the page changes. */
export function OneTimeKey({ made, onDone }) {
  const [copied, setCopied] = useState("");
  const field = useRef(null);
  useEffect(() => { field.current && field.current.focus(); field.current && field.current.select(); }, [made && made.id]);
  if (!made) return null;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(made.key);
      setCopied("Copied to the clipboard.");
    } catch {
      field.current.select();
      setCopied(document.execCommand("copy") ? "Copied to the clipboard." : "Select the key and copy it.");
    }
  };
  return html`<div class="one-time" role="region" aria-label="New API key">
    <p><strong>New key ${made.id}${made.label ? ` (${made.label})` : ""}${made.user ? ` for ${made.user}` : ""}:</strong>${" "}
      shown only now. Keep it secret; send it as the <code>x-api-key</code> header.</p>
    <div class="key-row">
      <label class="visually-hidden" for="one-time-key">API key</label>
      <input id="one-time-key" class="key" readonly value=${made.key} ref=${field} />
      <button type="button" onClick=${copy}>Copy</button>
      <button type="button" class="secondary" onClick=${onDone}>Done</button>
    </div>
    <p class="status" role="status" aria-live="polite">${copied}</p>
  </div>`;
}
