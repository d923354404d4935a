import { html, useState, useData, useTitle } from "../lib/ui.js";
import * as api from "../lib/api.js";

export default function Login({ query, onLogin, onGuest }) {
  useTitle("Log in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const next = query.next && query.next.startsWith("/") && !query.next.startsWith("//") ? query.next : "/ui";
  // single sign-on is offered when the server has OpenID Connect configured (/health says so)
  const oidc = useData(() => api.get("/health").then((h) => Boolean(h.login && h.login.oidc)), []);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(email, password);
      onLogin(await api.me());
      window.coflowsNavigate(next, true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="login" aria-labelledby="login-title">
    <h1 id="login-title">Log in to coflows</h1>
    <form onSubmit=${submit}>
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required value=${email}
             onInput=${(e) => setEmail(e.target.value)} />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required value=${password}
             onInput=${(e) => setPassword(e.target.value)} />
      ${error ? html`<p class="error" role="alert">${error.message}</p>` : null}
      <button type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
    </form>
    ${oidc.data ? html`<p><a class="button secondary" href=${"/auth/oidc/login?next=" + encodeURIComponent(next)}>Log in with single sign-on</a></p>` : null}
    <p class="hint">No account? An admin creates one with <code>coflows user add EMAIL</code>.
      <button class="link" onClick=${onGuest}>Continue without logging in</button> to see public workflows.</p>
  </section>`;
}
