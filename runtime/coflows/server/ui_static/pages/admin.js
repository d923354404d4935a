// Admin: users (add, password, admin flag, remove), groups and memberships (add, grant with a level and
// an expiry, revoke, remove) and any user's API keys (list, make — shown once —, revoke). Everything goes
// through the admin routes of /auth (admins only; the server refuses everyone else with 403).
import { html, Page, useData, useState, ErrorBox, Loading, when } from "../lib/ui.js";
import * as api from "../lib/api.js";
import { useAction, Outcome, KeyTable, NewKeyForm, OneTimeKey } from "./keys.js";

const LEVELS = ["view", "read", "write", "denied", "invited"];

/** A date input's value (YYYY-MM-DD) → the ISO time of 00:00 of that day in the user's time zone. */
function localMidnight(day) {
  return day ? new Date(`${day}T00:00:00`).toISOString() : undefined;
}

function Membership({ m }) {
  return html`<span class=${"pill" + (m.expired ? " stopped" : "")}>${m.group || m.user}: ${m.level}${
    m.expires ? ` ${m.expired ? "expired" : "until"} ${when(m.expires)}` : ""}</span> `;
}

function AddUser({ onDone }) {
  const [form, setForm] = useState({ email: "", name: "", password: "", admin: false });
  const act = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.type === "checkbox" ? e.target.checked : e.target.value });
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      const body = { email: form.email, name: form.name, admin: form.admin };
      if (form.password) body.password = form.password;
      const user = await api.post("/auth/users", body);
      setForm({ email: "", name: "", password: "", admin: false });
      onDone();
      return `Added ${user.email}.`;
    });
  };
  return html`<form class="grid-form" onSubmit=${submit} aria-labelledby="add-user-title">
    <h3 id="add-user-title">Add a user</h3>
    <label for="new-email">Email</label>
    <input id="new-email" type="email" required autocomplete="off" value=${form.email} onInput=${set("email")} />
    <label for="new-name">Name</label>
    <input id="new-name" maxlength="200" value=${form.name} onInput=${set("name")} />
    <label for="new-password">Password <span class="hint">(optional, 8+ characters)</span></label>
    <input id="new-password" type="password" autocomplete="new-password" minlength="8" value=${form.password}
           onInput=${set("password")} />
    <label class="check"><input type="checkbox" checked=${form.admin} onChange=${set("admin")} /> Admin</label>
    <button type="submit" disabled=${act.busy}>Add user</button>
    <${Outcome} action=${act} />
  </form>`;
}

function SetPassword({ user, onDone }) {
  const [password, setPassword] = useState("");
  const act = useAction();
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      await api.post(`/auth/users/${api.enc(user.email)}/password`, { password });
      setPassword("");
      onDone();
      return `Password of ${user.email} set; their sessions ended.`;
    });
  };
  return html`<form class="inline" onSubmit=${submit} aria-label=${"New password of " + user.email}>
    <label for="set-password">New password of ${user.email}</label>
    <input id="set-password" type="password" autocomplete="new-password" minlength="8" required value=${password}
           onInput=${(e) => setPassword(e.target.value)} />
    <button type="submit" disabled=${act.busy}>Set password</button>
    <${Outcome} action=${act} />
  </form>`;
}

function UserKeys({ user, onChange }) {
  const keys = useData(() => api.get(`/auth/users/${api.enc(user.email)}/keys`), [user.email]);
  const [made, setMade] = useState(null);
  const act = useAction();
  const make = (label) => act.run(async () => {
    setMade(await api.post(`/auth/users/${api.enc(user.email)}/keys`, { label }));
    keys.reload();
    onChange();
  });
  const revoke = (k) => act.run(async () => {
    await api.post(`/auth/admin/keys/${api.enc(k.id)}/revoke`);
    keys.reload();
    onChange();
    return `Key ${k.id} revoked.`;
  });
  return html`<section class="sub" aria-labelledby="user-keys-title">
    <h3 id="user-keys-title">API keys of ${user.email}</h3>
    <${ErrorBox} error=${keys.error} />
    ${keys.data ? html`<${KeyTable} keys=${keys.data} onRevoke=${revoke} busy=${act.busy} caption=${"API keys of " + user.email} />`
                : html`<${Loading} what="keys" />`}
    <${OneTimeKey} made=${made} onDone=${() => setMade(null)} />
    <${NewKeyForm} onMake=${make} busy=${act.busy} idPrefix="admin-key" />
    <${Outcome} action=${act} />
  </section>`;
}

function Users({ users, me, reload }) {
  const [open, setOpen] = useState(null); // {email, what: "password" | "keys"}
  const act = useAction();
  const toggle = (email, what) => setOpen(open && open.email === email && open.what === what ? null : { email, what });
  const setAdmin = (u, admin) => act.run(async () => {
    await api.post(`/auth/users/${api.enc(u.email)}/admin`, { admin });
    reload();
    return `${u.email} is ${admin ? "now" : "no longer"} an admin.`;
  });
  const remove = (u) => {
    if (!window.confirm(`Remove ${u.email} with their memberships, API keys and sessions?`)) return;
    act.run(async () => {
      await api.post(`/auth/users/${api.enc(u.email)}/remove`);
      if (open && open.email === u.email) setOpen(null);
      reload();
      return `Removed ${u.email}.`;
    });
  };
  const selected = open && users.find((u) => u.email === open.email);
  return html`<section class="card" aria-labelledby="users-title">
    <h2 id="users-title">Users</h2>
    <${Outcome} action=${act} id="users-status" />
    <div class="table-wrap"><table id="users" class="stacked">
      <caption class="visually-hidden">Users</caption>
      <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Admin</th><th scope="col">Password</th>
        <th scope="col">Locked</th><th scope="col">Groups</th><th scope="col">Keys</th><th scope="col">Actions</th></tr></thead>
      <tbody>${users.map((u) => html`<tr key=${u.email} data-user=${u.email}>
        <th scope="row">${u.email}</th><td data-label="Name">${u.name}</td><td data-label="Admin">${u.admin ? "yes" : "no"}</td>
        <td data-label="Password">${u.password ? "set" : "none"}</td>
        <td data-label="Locked">${u.locked_until ? `until ${when(u.locked_until)}` : "no"}</td>
        <td data-label="Groups">${u.groups.length ? u.groups.map((m) => html`<${Membership} m=${m} />`) : html`<span class="hint">none</span>`}</td>
        <td data-label="Keys">${u.keys}</td>
        <td class="row-actions">
          <button class="secondary small" aria-expanded=${Boolean(open && open.email === u.email && open.what === "password")}
                  onClick=${() => toggle(u.email, "password")} aria-label=${"Set the password of " + u.email}>Password…</button>
          <button class="secondary small" aria-expanded=${Boolean(open && open.email === u.email && open.what === "keys")}
                  onClick=${() => toggle(u.email, "keys")} aria-label=${"API keys of " + u.email}>Keys…</button>
          ${u.email === me.email ? null : html`
            <button class="secondary small" disabled=${act.busy} onClick=${() => setAdmin(u, !u.admin)}
                    aria-label=${(u.admin ? "Take admin away from " : "Make admin: ") + u.email}>${u.admin ? "Unmake admin" : "Make admin"}</button>
            <button class="danger small" disabled=${act.busy} onClick=${() => remove(u)}
                    aria-label=${"Remove " + u.email}>Remove</button>`}
        </td>
      </tr>`)}</tbody>
    </table></div>
    ${selected && open.what === "password" ? html`<${SetPassword} key=${"pw" + selected.email} user=${selected} onDone=${reload} />` : null}
    ${selected && open.what === "keys" ? html`<${UserKeys} key=${"k" + selected.email} user=${selected} onChange=${reload} />` : null}
    <${AddUser} onDone=${reload} />
  </section>`;
}

function AddGroup({ onDone }) {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const act = useAction();
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      await api.post("/auth/groups", { id, name });
      setId("");
      setName("");
      onDone();
      return `Added group ${id}.`;
    });
  };
  return html`<form class="grid-form" onSubmit=${submit} aria-labelledby="add-group-title">
    <h3 id="add-group-title">Add a group</h3>
    <label for="group-id">ID</label>
    <input id="group-id" required maxlength="200" value=${id} onInput=${(e) => setId(e.target.value)} />
    <label for="group-name">Name</label>
    <input id="group-name" maxlength="200" value=${name} onInput=${(e) => setName(e.target.value)} />
    <button type="submit" disabled=${act.busy}>Add group</button>
    <${Outcome} action=${act} />
  </form>`;
}

function Grant({ groups, users, onDone }) {
  const [form, setForm] = useState({ group: "", user: "", level: "read", expires: "" });
  const act = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      const body = { user: form.user, level: form.level };
      if (form.expires) body.expires = localMidnight(form.expires);
      const g = await api.post(`/auth/groups/${api.enc(form.group)}/grant`, body);
      onDone();
      return `${g.user}: ${g.level} in ${form.group}${g.expires ? " until " + when(g.expires) : ""}.`;
    });
  };
  return html`<form class="grid-form" onSubmit=${submit} aria-labelledby="grant-title">
    <h3 id="grant-title">Grant a level</h3>
    <label for="grant-group">Group</label>
    <select id="grant-group" required value=${form.group} onChange=${set("group")}>
      <option value="">Choose a group…</option>
      ${groups.map((g) => html`<option value=${g.id}>${g.workflow ? `${g.workflow} (workflow ${g.id})` : g.name && g.name !== g.id ? `${g.name} (${g.id})` : g.id}</option>`)}
    </select>
    <label for="grant-user">User</label>
    <select id="grant-user" required value=${form.user} onChange=${set("user")}>
      <option value="">Choose a user…</option>
      ${users.map((u) => html`<option value=${u.email}>${u.name ? `${u.name} <${u.email}>` : u.email}</option>`)}
    </select>
    <label for="grant-level">Level</label>
    <select id="grant-level" value=${form.level} onChange=${set("level")}>
      ${LEVELS.map((l) => html`<option value=${l}>${l}</option>`)}
    </select>
    <label for="grant-expires">Expires on <span class="hint">(00:00 your time; empty: never)</span></label>
    <input id="grant-expires" type="date" value=${form.expires} onInput=${set("expires")} />
    <button type="submit" disabled=${act.busy}>Grant</button>
    <${Outcome} action=${act} />
  </form>`;
}

function Groups({ groups, users, reload }) {
  const act = useAction();
  const revoke = (g, m) => act.run(async () => {
    await api.post(`/auth/groups/${api.enc(g.id)}/revoke`, { user: m.user });
    reload();
    return `${m.user} removed from ${g.id}.`;
  });
  const remove = (g) => {
    if (!window.confirm(`Remove group ${g.id} and every membership in it?`)) return;
    act.run(async () => {
      await api.post(`/auth/groups/${api.enc(g.id)}/remove`);
      reload();
      return `Removed group ${g.id}.`;
    });
  };
  return html`<section class="card" aria-labelledby="groups-title">
    <h2 id="groups-title">Groups</h2>
    <p class="hint">A workflow's ID is a group too: a level in it is the user's level on that workflow.</p>
    <${Outcome} action=${act} id="groups-status" />
    <div class="table-wrap"><table id="groups" class="stacked">
      <caption class="visually-hidden">Groups</caption>
      <thead><tr><th scope="col">ID</th><th scope="col">Name</th><th scope="col">Members</th><th scope="col">Actions</th></tr></thead>
      <tbody>${groups.map((g) => html`<tr key=${g.id} data-group=${g.id}>
        <th scope="row"><code>${g.id}</code></th>
        <td data-label="Name">${g.workflow ? html`workflow <a href=${"/ui/workflows/" + api.enc(g.id)} data-route>${g.workflow}</a>` : g.name}</td>
        <td data-label="Members">${g.members.length ? html`<ul class="members">${g.members.map((m) => html`<li>
            <${Membership} m=${m} />
            <button class="link small" disabled=${act.busy} onClick=${() => revoke(g, m)}
                    aria-label=${`Revoke ${m.user} from ${g.id}`}>revoke</button></li>`)}</ul>`
          : html`<span class="hint">no members</span>`}</td>
        <td>${g.workflow && !g.members.length ? null : html`<button class="danger small" disabled=${act.busy}
            onClick=${() => remove(g)} aria-label=${"Remove group " + g.id}>Remove</button>`}</td>
      </tr>`)}</tbody>
    </table></div>
    <div class="forms">
      <${Grant} groups=${groups} users=${users} onDone=${reload} />
      <${AddGroup} onDone=${reload} />
    </div>
  </section>`;
}

export default function Admin({ me }) {
  if (!me || !me.admin) {
    return html`<${Page} title="Admin">
      <p class="notice" id="admins-only">This page is for admins only. Ask an admin to manage users, groups and keys;
        your own profile and API keys are on <a href="/ui/profile" data-route>your profile</a>.</p>
    <//>`;
  }
  return html`<${AdminPage} me=${me} />`;
}

function AdminPage({ me }) {
  const data = useData(() => Promise.all([api.get("/auth/users"), api.get("/auth/groups")]), []);
  const [users, groups] = data.data || [[], []];
  return html`<${Page} title="Admin">
    <${ErrorBox} error=${data.error} />
    ${data.loading && !data.data ? html`<${Loading} what="users and groups" />` : null}
    ${data.data ? html`
      <${Users} users=${users} me=${me} reload=${data.reload} />
      <${Groups} groups=${groups} users=${users} reload=${data.reload} />` : null}
  <//>`;
}
