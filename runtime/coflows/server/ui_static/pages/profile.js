// The user's own profile: who I am, my groups and levels (expiry in local time), my password, my API keys
// (make one — shown once —, revoke). Reads /auth/me and /auth/keys; writes /auth/password and /auth/keys.
import { html, Page, useData, useState, ErrorBox, Loading, when } from "../lib/ui.js";
import * as api from "../lib/api.js";
import { useAction, Outcome, KeyTable, NewKeyForm, OneTimeKey } from "./keys.js";

function Identity({ who }) {
  const how = { session: "a login session", key: "an API key", "admin-key": "the admin key" }[who.via] || who.via;
  return html`<section class="card" aria-labelledby="who-title">
    <h2 id="who-title">Who I am</h2>
    <dl class="facts" id="identity">
      <dt>Email</dt><dd>${who.email || "— (the admin key has no user)"}</dd>
      <dt>Name</dt><dd>${who.name || "—"}</dd>
      <dt>Admin</dt><dd>${who.admin ? "yes" : "no"}</dd>
      <dt>Signed in with</dt><dd>${how}</dd>
    </dl>
  </section>`;
}

function Groups({ groups }) {
  return html`<section class="card" aria-labelledby="groups-title">
    <h2 id="groups-title">My groups and levels</h2>
    ${groups.length ? html`<div class="table-wrap"><table id="my-groups">
      <caption class="visually-hidden">My groups and levels</caption>
      <thead><tr><th scope="col">Group</th><th scope="col">Level</th><th scope="col">Expires (your time)</th></tr></thead>
      <tbody>${groups.map((g) => html`<tr key=${g.id}><th scope="row"><code>${g.id}</code></th><td>${g.level}</td>
        <td>${g.expires ? when(g.expires) : "never"}</td></tr>`)}</tbody>
    </table></div>` : html`<p class="hint">You are in no group: you see public workflows only (and those that name you).</p>`}
  </section>`;
}

function ChangePassword() {
  const [form, setForm] = useState({ current: "", next: "", again: "" });
  const act = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      if (form.next !== form.again) throw new Error("The new passwords differ: type the same one twice.");
      await api.post("/auth/password", { current: form.current, new: form.next });
      setForm({ current: "", next: "", again: "" });
      return "Password changed. Your other sessions have ended.";
    });
  };
  return html`<section class="card" aria-labelledby="password-title">
    <h2 id="password-title">Change my password</h2>
    <form class="grid-form" onSubmit=${submit} id="password-form">
      <label for="current-password">Current password</label>
      <input id="current-password" type="password" autocomplete="current-password" required value=${form.current}
             onInput=${set("current")} />
      <label for="new-password">New password <span class="hint">(8+ characters)</span></label>
      <input id="new-password" type="password" autocomplete="new-password" minlength="8" required value=${form.next}
             onInput=${set("next")} />
      <label for="again-password">New password again</label>
      <input id="again-password" type="password" autocomplete="new-password" minlength="8" required value=${form.again}
             onInput=${set("again")} />
      <button type="submit" disabled=${act.busy}>Change password</button>
      <${Outcome} action=${act} id="password-status" />
    </form>
  </section>`;
}

function MyKeys({ canMake }) {
  const keys = useData(() => api.get("/auth/keys"), []);
  const [made, setMade] = useState(null);
  const act = useAction();
  const make = (label) => act.run(async () => {
    setMade(await api.post("/auth/keys", { label }));
    keys.reload();
  });
  const revoke = (k) => act.run(async () => {
    await api.post(`/auth/keys/${api.enc(k.id)}/revoke`);
    keys.reload();
    return `Key ${k.id} revoked.`;
  });
  return html`<section class="card" aria-labelledby="keys-title">
    <h2 id="keys-title">My API keys</h2>
    <p class="hint">A key acts as you, with your levels, from programs: send it as the <code>x-api-key</code> header.</p>
    <${ErrorBox} error=${keys.error} />
    ${keys.data ? html`<${KeyTable} keys=${keys.data} onRevoke=${revoke} busy=${act.busy} caption="My API keys" />`
                : html`<${Loading} what="keys" />`}
    <${OneTimeKey} made=${made} onDone=${() => setMade(null)} />
    ${canMake ? html`<${NewKeyForm} onMake=${make} busy=${act.busy} idPrefix="my-key" />`
              : html`<p class="hint">New keys are made from a login session.</p>`}
    <${Outcome} action=${act} id="keys-status" />
  </section>`;
}

export default function Profile({ me }) {
  const who = useData(() => api.me(), []);
  const current = who.data || me;
  if (!current) {
    return html`<${Page} title="Profile">
      <p>You are not logged in. <a href="/ui/login?next=/ui/profile" data-route>Log in</a> to see your profile and keys.</p>
    <//>`;
  }
  const user = current.via !== "admin-key";
  const session = current.via === "session";
  return html`<${Page} title="Profile">
    <${ErrorBox} error=${who.error} />
    <${Identity} who=${current} />
    <${Groups} groups=${current.groups || []} />
    ${session ? html`<${ChangePassword} />` : null}
    ${user ? html`<${MyKeys} canMake=${session} />` : null}
  <//>`;
}
