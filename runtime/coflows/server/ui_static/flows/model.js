// A run as the page knows it: the last snapshot or fetch, with the live events applied on top.
// Events do not carry outputs (they stay small); the details panel fetches the run for those.

import { TERMINAL } from "./states.js";

export class RunModel {
  constructor() {
    this.run = null;            // the run without its tasks (id, name, state, times, error)
    this.tasks = new Map();     // node → task (as GET /flows/runs/{id} gives it)
    this.history = [];          // [node, state, source, ms since page start]: what the page saw, in order
  }

  /** Replace everything with a full run (GET or SSE snapshot); says whether the graph's shape changed. */
  load(run, source) {
    const before = this.shape();
    const { tasks, ...rest } = run;
    const old = this.tasks;
    this.run = rest;
    this.tasks = new Map();
    for (const t of tasks || []) {
      this.tasks.set(t.node, t);
      if (old.get(t.node)?.state !== t.state) this.saw(t.node, t.state, source);
    }
    return before !== this.shape();
  }

  /** Apply one live event; returns {node, structural} (structural: nodes or edges changed). */
  apply(ev) {
    if (ev.type === "run") {
      Object.assign(this.run, { state: ev.state, error: ev.error ?? this.run.error });
      return { node: null, structural: false };
    }
    if (ev.type === "graph") return this.addNode(ev);
    let t = this.tasks.get(ev.node);
    let structural = false;
    if (!t) {  // a node we have not heard of (an event raced our fetch): show it, details come on fetch
      t = blankTask(ev.node, ev);
      this.tasks.set(ev.node, t);
      structural = true;
    }
    t.state = ev.state;
    if (ev.attempt != null) t.attempts = ev.attempt;
    if (ev.state === "running") Object.assign(t, { started_at: ev.time, finished_at: null, error: null });
    if (TERMINAL.has(ev.state) || ev.state === "skipped") t.finished_at = ev.time;
    if ("error" in ev) t.error = ev.error;
    if ("hints" in ev) t.hints = ev.hints;
    if ("retry_at" in ev) t.retry_at = ev.retry_at;
    if (ev.items != null) t.extra = { ...t.extra, items: ev.items };
    this.saw(ev.node, ev.state, "sse");
    return { node: ev.node, structural };
  }

  /** A node added by a running task (add/insert) or an item of a map. Idempotent: replays are no-ops. */
  addNode(ev) {
    if (this.tasks.has(ev.node)) return { node: ev.node, structural: false };
    const t = blankTask(ev.node, ev);
    this.tasks.set(ev.node, t);
    for (const b of ev.before || []) {  // insert: the new node takes the adder's place above `before`
      const bt = this.tasks.get(b);
      if (!bt) continue;
      const i = bt.after.indexOf(ev.added_by);
      if (i >= 0) bt.after[i] = ev.node; else bt.after.push(ev.node);
    }
    this.saw(ev.node, t.state, "sse");
    return { node: ev.node, structural: true };
  }

  saw(node, state, source) {
    this.history.push([node, state, source, Math.round(performance.now())]);
  }

  /** Map node → its item tasks (in item order), read from `extra.map` / `extra.index`. */
  groups() {
    const groups = new Map();
    for (const t of this.tasks.values()) {
      const m = t.extra?.map;
      if (typeof m === "string" && m !== t.node && this.tasks.has(m)) {
        if (!groups.has(m)) groups.set(m, []);
        groups.get(m).push(t);
      }
    }
    for (const items of groups.values()) items.sort((a, b) => (a.extra.index ?? 0) - (b.extra.index ?? 0));
    return groups;
  }

  /** A string that changes when nodes or edges change (not when states do). */
  shape() {
    let s = "";
    for (const t of this.tasks.values()) s += t.node + "<" + t.after.join(",") + (t.extra?.map ?? "") + ";";
    return s;
  }
}

function blankTask(node, ev) {
  return {
    node, ref: ev.ref ?? "", state: ev.state ?? "pending", after: [...(ev.after || [])], attempts: 0,
    started_at: null, finished_at: null, output: null, hints: null, error: null, added_by: ev.added_by ?? null,
    extra: { ...(ev.extra || {}) },
  };
}
