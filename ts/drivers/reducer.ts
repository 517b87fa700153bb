// The differential driver of the generated module (tests/rendering/test_typescript.py): each input line is a
// case, each output line its answer, in the shapes the Python side builds for the same case.
import * as Lifecycle from "./lifecycle.js";
import { serve } from "./io.js";

// Every module under test has the shape of the built-in spec's export (`lifecycle.ts`); a request
// names the one it is for (another spec's export, in the same directory).
type Module = typeof Lifecycle;
let L: Module = Lifecycle;
const modules = new Map<string, Module>([["lifecycle", Lifecycle]]);

async function use(name: string | undefined): Promise<void> {
  const wanted = name ?? "lifecycle";
  if (!/^[a-z_]+$/.test(wanted)) throw new Error(`bad module name ${wanted}`);
  let module = modules.get(wanted);
  if (module === undefined) {
    module = (await import(new URL(`./${wanted}.ts`, import.meta.url).href)) as Module;
    modules.set(wanted, module);
  }
  L = module;
}

interface Options {
  maxEventIds?: number;
  maxFinishedTurns?: number;
  maxClockSkewMs?: number | null;
  clockMs?: number;
}

function projector(options: Options): Lifecycle.SessionProjector {
  const clockMs = options.clockMs;
  return new L.SessionProjector({
    maxEventIds: options.maxEventIds,
    maxFinishedTurns: options.maxFinishedTurns,
    maxClockSkewMs: options.maxClockSkewMs === undefined ? null : options.maxClockSkewMs,
    clock: clockMs === undefined ? Date.now : () => clockMs,
  });
}

function step(p: Lifecycle.SessionProjector, line: string): unknown {
  try {
    return L.outcomeToWire(p.applyLine(line));
  } catch (error) {
    if (error instanceof L.EventError) return { error: error.field };
    throw error;
  }
}

/** A log: every line's outcome (or the field its error names), then every thread. */
function log(request: { options: Options; lines: string[] }): unknown {
  const p = projector(request.options);
  const results = request.lines.map((line) => step(p, line));
  const threads: { [id: string]: unknown } = {};
  for (const [id, session] of p.sessions()) {
    threads[id] = { session, finished: p.finishedTurns(id), seen: p.seenEventIds(id) };
  }
  return { results, threads };
}

interface State {
  session: Lifecycle.Session;
  finished: string[];
}

/** Every event of the universe from each state: the outcome, and the finished turns after it. */
function edges(request: { states: Array<State | null>; events: unknown[] }): unknown {
  return request.states.map((state) => request.events.map((event) => {
    const p = projector({});
    if (state !== null) p.seed(state.session, { finishedTurns: state.finished });
    const threadId = (event as { threadId: string }).threadId;
    let outcome: unknown;
    try {
      outcome = L.outcomeToWire(p.apply(event));
    } catch (error) {
      if (error instanceof L.EventError) return { error: error.field };
      throw error;
    }
    return { outcome, finished: p.finishedTurns(threadId) };
  }));
}

/** createdAt texts -> microseconds since the epoch (as text), or null when refused. */
function timestamps(request: { texts: string[] }): unknown {
  return request.texts.map((text) => {
    try {
      return L.parseTimestamp(text).toString();
    } catch {
      return null;
    }
  });
}

interface SlotsIn {
  turn: string | null;
  err: string | null;
  upd: string | null;
  prov: string | null;
  pend: string | null;
  aw: string | null;
  req: Array<[Lifecycle.RequestId, string]>;
  finished: string[];
  event: unknown;
}

function slotsOf(input: SlotsIn): Lifecycle.Slots {
  const ev = L.parseEvent(input.event);
  return {
    turn: input.turn, err: input.err, upd: input.upd, upd_dt: input.upd === null ? null : L.parseTimestamp(input.upd),
    prov: input.prov, t: ev.turn_id, ev, fin: new Set(input.finished), pend: input.pend, aw: input.aw,
    req: input.req,
  };
}

type RenderingCase =
  | { guard: string; input: SlotsIn }
  | { effect: string; params: Lifecycle.Params; input: SlotsIn };

/** A guard's value on its input; an effect's slots after it on its input (upd_dt as text), and the
 * turns it remembered. */
function renderings(request: { cases: RenderingCase[] }): unknown {
  return request.cases.map((c) => {
    const x = slotsOf(c.input);
    if ("guard" in c) return L.GUARDS.get(c.guard)!(x);
    const remembered: string[] = [];
    L.EFFECTS.get(c.effect)!(x, c.params, (turn) => remembered.push(turn));
    return {
      turn: x.turn, err: x.err, upd: x.upd, upd_dt: x.upd_dt === null ? null : x.upd_dt.toString(),
      prov: x.prov, pend: x.pend, aw: x.aw, req: x.req, remembered,
    };
  });
}

await serve(async (request) => {
  const r = request as { kind: string; module?: string };
  await use(r.module);
  switch (r.kind) {
    case "log":
      return log(request as Parameters<typeof log>[0]);
    case "edges":
      return edges(request as Parameters<typeof edges>[0]);
    case "timestamps":
      return timestamps(request as Parameters<typeof timestamps>[0]);
    case "renderings":
      return renderings(request as Parameters<typeof renderings>[0]);
    default:
      throw new Error(`unknown case ${r.kind}`);
  }
});
