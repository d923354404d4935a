// The colours of task and run states: cloudmesh-flow's for the states it has (pending light
// blue, running orange, finished green, error red), ours for the others. flows.css has the same.
export const COLORS = {
  pending: "#add8e6", running: "#ffa500", finished: "#2e9d4f", failed: "#e53935",
  skipped: "#cfcfcf", cancelled: "#c77dd6", interrupted: "#f2c94c",
};
export const STATES = Object.keys(COLORS);

/** Run states after which nothing changes any more (the server then ends a run's event stream). */
export const TERMINAL = new Set(["finished", "failed", "cancelled", "interrupted"]);
