// Drawing a run as a DAG: dagre computes the layout, cytoscape draws it on a canvas (pan, zoom, tap).
// Items of a map node are drawn inside its box (a compound node, laid out as a grid); past
// COLLAPSE_OVER items the map node is one node showing the count and a pie of the items' states.

// the npm builds the server serves under /ui/vendor/ (absolute: only this page needs them)
import cytoscape from "/ui/vendor/cytoscape.mjs";
import dagre from "/ui/vendor/dagre.mjs";

import { COLORS, STATES } from "./states.js";

export const COLLAPSE_OVER = 50;
const BIG = 150;  // tasks: past this, the faster ranker

// hints.shape: cytoscape's names, plus the usual graphviz/cloudmesh words
const SHAPES = {
  box: "round-rectangle", rect: "rectangle", rectangle: "rectangle", square: "rectangle",
  circle: "ellipse", ellipse: "ellipse", oval: "ellipse", diamond: "diamond", triangle: "triangle",
  hexagon: "hexagon", octagon: "octagon", star: "star", pentagon: "pentagon", "round-rectangle": "round-rectangle",
  barrel: "barrel", tag: "tag", rhomboid: "rhomboid", vee: "vee",
};
const ITEM_W = 92, ITEM_H = 34, GAP = 8, PAD = 12, HEADER = 22;

const STYLE = [
  { selector: "node", style: {
    "label": "data(label)", "width": "data(w)", "height": "data(h)", "shape": "data(shape)",
    "background-color": "data(color)", "border-width": 1, "border-color": "#555",
    "text-valign": "center", "text-halign": "center", "text-wrap": "wrap", "font-size": 11,
    "font-family": "system-ui, sans-serif", "color": "#111", "min-zoomed-font-size": 5,
  } },
  { selector: "node[state = 'running']", style: { "border-width": 3, "border-color": "#b35c00" } },
  { selector: "node[state = 'failed']", style: { "border-width": 2, "border-color": "#8b0000", "color": "#fff" } },
  { selector: "node.group", style: {
    "background-opacity": 0.18, "border-width": 2, "border-color": "data(color)", "text-valign": "top",
    "text-halign": "center", "padding": `${PAD}px`, "font-weight": "bold", "shape": "round-rectangle",
  } },
  { selector: "node.collapsed", style: {
    "shape": "ellipse", "border-width": 4, "border-color": "data(color)", "text-valign": "bottom",
    "text-margin-y": 4, "pie-size": "92%",
    ...Object.fromEntries(STATES.flatMap((s, i) => [
      [`pie-${i + 1}-background-color`, COLORS[s]], [`pie-${i + 1}-background-size`, `data(pie${i})`]])),
  } },
  { selector: "node:selected", style: { "overlay-color": "#1565c0", "overlay-opacity": 0.25, "overlay-padding": 4 } },
  { selector: "edge", style: {
    "width": 1.5, "line-color": "#8a8a8a", "target-arrow-color": "#8a8a8a", "target-arrow-shape": "triangle",
    "curve-style": "bezier", "arrow-scale": 0.9,
  } },
];

/** How a task looks: its hints (cloudmesh display hints) win over its state's defaults. */
export function look(t) {
  const h = t.hints || {};
  const title = h.label != null ? String(h.label) : t.node;
  const status = h.status != null ? String(h.status) : t.state;
  return {
    label: `${title}\n${status}`, color: h.color || COLORS[t.state] || "#eee",
    shape: SHAPES[String(h.shape || "").toLowerCase()] || "round-rectangle",
    w: Math.min(220, Math.max(64, 7 * Math.max(title.length, status.length) + 20)), h: 40,
  };
}

/** Counts of the items' states, and the pie slices (percent) in STATES order. */
function itemSummary(items) {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const t of items) counts[t.state] = (counts[t.state] || 0) + 1;
  const share = (s) => (items.length ? (100 * counts[s]) / items.length : 0);
  const pie = Object.fromEntries(STATES.map((s, i) => [`pie${i}`, share(s)]));
  return { counts, pie };
}

export class DagView {
  constructor(container, onSelect) {
    this.cy = cytoscape({
      container, style: STYLE, layout: { name: "preset" }, minZoom: 0.05, maxZoom: 3,
      boxSelectionEnabled: false, autoungrabify: true, selectionType: "single",
    });
    this.cy.on("tap", "node", (e) => onSelect(e.target.data("task")));
    // the container changes size (the details panel opens): redraw, and refit unless the user
    // has panned or zoomed by hand
    this.userMoved = false;
    container.addEventListener("wheel", () => { this.userMoved = true; });
    container.addEventListener("pointermove", (e) => { if (e.buttons) this.userMoved = true; });
    this.resizes = new ResizeObserver(() => {
      this.cy.resize();
      if (!this.userMoved) this.fit();
    });
    this.resizes.observe(container);
    this.owner = new Map();  // task node → the drawn node standing for it (itself or its collapsed map)
    this.groups = new Map();
  }

  /** Let go of the canvas (the page is left without a reload). */
  destroy() {
    this.resizes.disconnect();
    this.cy.destroy();
  }

  /** Build every element and lay the graph out (on load and when nodes or edges change). */
  render(model) {
    const groups = model.groups();
    const collapsed = new Set([...groups].filter(([, items]) => items.length > COLLAPSE_OVER).map(([m]) => m));
    const expanded = new Map([...groups].filter(([m]) => !collapsed.has(m)));
    this.groups = groups;
    this.owner = new Map();
    for (const t of model.tasks.values()) {
      const m = t.extra?.map;
      this.owner.set(t.node, groups.has(m) && collapsed.has(m) && m !== t.node ? m : t.node);
    }
    const top = (node) => {  // the node dagre places: an expanded item lives inside its map's box
      const o = this.owner.get(node);
      const m = model.tasks.get(o)?.extra?.map;
      return expanded.has(m) && m !== o ? m : o;
    };

    const g = new dagre.graphlib.Graph();
    // network-simplex ranks best but is ~6x slower than tight-tree past a few hundred nodes
    // (0.9 s against 0.17 s for 500 nodes in bench/flows_page.py): the page must stay quick.
    const ranker = model.tasks.size > BIG ? "tight-tree" : "network-simplex";
    g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 60, marginx: 20, marginy: 20, ranker });
    g.setDefaultEdgeLabel(() => ({}));
    const elements = [];
    const grids = new Map();
    for (const t of model.tasks.values()) {
      if (top(t.node) !== t.node) continue;
      if (expanded.has(t.node)) {
        const n = expanded.get(t.node).length, cols = Math.ceil(Math.sqrt(n)), rows = Math.ceil(n / cols);
        const w = cols * (ITEM_W + GAP) - GAP + 2 * PAD, h = rows * (ITEM_H + GAP) - GAP + 2 * PAD + HEADER;
        grids.set(t.node, { cols, rows, w, h });
        g.setNode(t.node, { width: w, height: h });
      } else {
        const { w, h } = collapsed.has(t.node) ? { w: 76, h: 110 } : look(t);
        g.setNode(t.node, { width: w, height: h });
      }
    }
    const edges = new Set();
    for (const t of model.tasks.values()) {
      for (const d of t.after) {
        if (!model.tasks.has(d)) continue;
        const a = top(d), b = top(t.node);
        if (a !== b && !g.hasEdge(a, b)) g.setEdge(a, b);
        const s = this.owner.get(d), e = this.owner.get(t.node);
        if (s !== e) edges.add(`${s}\u0000${e}`);
      }
    }
    const t0 = performance.now();
    dagre.layout(g);
    this.bounds = { w: g.graph().width || 1, h: g.graph().height || 1 };
    this.timings = { dagreMs: performance.now() - t0 };

    for (const t of model.tasks.values()) {
      const node = t.node;
      if (this.owner.get(node) !== node) continue;
      const m = t.extra?.map;
      if (expanded.has(m) && m !== node) {  // an item in its map's grid
        const p = g.node(m), grid = grids.get(m), i = expanded.get(m).indexOf(t);
        const x = p.x - grid.w / 2 + PAD + (i % grid.cols) * (ITEM_W + GAP) + ITEM_W / 2;
        const y = p.y - grid.h / 2 + PAD + HEADER + Math.floor(i / grid.cols) * (ITEM_H + GAP) + ITEM_H / 2;
        elements.push({ group: "nodes", data: { id: node, parent: m, ...this.data(t), w: ITEM_W, h: ITEM_H },
          position: { x, y }, classes: "item" });
      } else {
        const p = g.node(node);
        const classes = expanded.has(node) ? "group" : collapsed.has(node) ? "collapsed" : "";
        elements.push({ group: "nodes", data: { id: node, ...this.data(t) }, position: { x: p.x, y: p.y }, classes });
      }
    }
    for (const key of edges) {
      const [source, target] = key.split("\u0000");
      elements.push({ group: "edges", data: { id: `e:${key}`, source, target } });
    }
    const t1 = performance.now();
    this.cy.renderer().hideEdgesOnViewport = elements.length > 4 * BIG;  // smooth pan/zoom of big graphs
    this.cy.batch(() => {
      this.cy.elements().remove();
      this.cy.add(elements);
    });
    this.timings.drawMs = performance.now() - t1;
    const t2 = performance.now();
    this.fit();
    this.timings.fitMs = performance.now() - t2;
  }

  /** Show the whole graph, centred, from the layout's own bounds: cy.fit() would measure every
   * label first (~0.9 s for 500 nodes). A small graph is not blown up past 1.25×. */
  fit() {
    if (!this.bounds) return;
    const { w, h } = this.bounds, cw = this.cy.width(), ch = this.cy.height();
    const zoom = Math.max(this.cy.minZoom(), Math.min(1.25, (cw - 40) / w, (ch - 40) / h));
    this.cy.viewport({ zoom, pan: { x: (cw - w * zoom) / 2, y: (ch - h * zoom) / 2 } });
  }

  /** What one drawn node shows: its own look, or for a map its items' count and states. */
  data(t) {
    const items = this.groups.get(t.node);
    const d = { task: t.node, state: t.state, ...look(t) };
    if (!items) return d;
    const { counts, pie } = itemSummary(items);
    const done = counts.finished + counts.failed + counts.skipped + counts.cancelled;
    const head = (t.hints?.label ?? t.node) + ` ×${items.length}`;
    const tail = `${done}/${items.length} done` + (counts.running ? ` · ${counts.running} running` : "")
      + (counts.failed ? ` · ${counts.failed} failed` : "");
    if (items.length <= COLLAPSE_OVER) return { ...d, ...pie, items: items.length, label: `${head} · ${tail}` };
    return { ...d, ...pie, items: items.length, label: `${head}\n${tail}`, w: 76, h: 76 };
  }

  /** Restyle the drawn node of a task (and its map's summary) after a state change. */
  update(model, node) {
    const t = model.tasks.get(node);
    if (!t) return;
    const drawn = this.owner.get(node);
    if (drawn === node) this.cy.getElementById(node).data(this.data(t));
    const m = t.extra?.map;
    if (m && m !== node && model.tasks.has(m)) this.cy.getElementById(m).data(this.data(model.tasks.get(m)));
  }

  select(node) {
    this.cy.$(":selected").unselect();
    const drawn = this.owner.get(node);
    if (drawn) this.cy.getElementById(drawn).select();
  }

  /** Where a task's drawn node is on screen, relative to the container (for tests and tooling). */
  position(node) {
    const e = this.cy.getElementById(this.owner.get(node) ?? node);
    if (e.empty()) return null;
    const p = e.renderedPosition();
    return { x: p.x, y: p.y };
  }

  /** What is drawn for a task: its state, label, colour and, for a map, its items (for tests). */
  describe(node) {
    const drawn = this.owner.get(node);
    if (!drawn) return null;
    const e = this.cy.getElementById(drawn);
    return {
      drawn, state: e.data("state"), label: e.data("label"), color: e.data("color"), shape: e.data("shape"),
      items: e.data("items") ?? null, children: e.children().length,
      collapsed: e.hasClass("collapsed"), group: e.hasClass("group"),
      parents: e.incomers("node").map((p) => p.id()).sort(),
    };
  }
}
