// bench:chat's scenarios as data: what each one opens and sends, the settings a run works with
// (from the command line, bench/chat/cli.ts), and the rules that follow from both: which systems
// run a scenario, how many client processes and how many messages in flight.
import type { System } from "./shared.ts";

export const SCENARIO_IDS = ["a", "b", "c", "ramp", "pages", "growth", "tabs"] as const;
export type ScenarioId = (typeof SCENARIO_IDS)[number];
export type Kind = "traffic" | "idle" | "ramp" | "pages" | "growth" | "tabs";
/** The tabs scenario runs twice per system: tabs on one shared stream per browser, and on streams of their own. */
export type Variant = "shared" | "own";

export interface Scenario {
  id: ScenarioId;
  kind: Kind;
  tabs: number;
  rooms: number;
  /** Messages per second in the open-loop phase (traffic); pages: the send rate. */
  rate: number;
  /** pages: page loads without a stream. */
  pages?: number;
  /** pages, growth: messages sent. */
  messages?: number;
  /** tabs: browsers (sessions), and tabs each (tabs = browsers × tabsPerBrowser). */
  browsers?: number;
  tabsPerBrowser?: number;
}

/** What a run works with, from the command line. */
export interface Settings {
  quick: boolean;
  /** The scenarios to run, in their declared order. */
  scenarios: Scenario[];
  systems: System[];
  /** Client processes. */
  workers: number;
  /** Length of the open-loop and of the closed-loop phase. */
  phaseMs: number;
  /** --inflight: messages in flight per client process in the closed loop (undefined: from the tab count). */
  inflight: number | undefined;
  /** Pause before each RSS reading. */
  settleMs: number;
  /** Pause between the forced GCs of an after-GC memory reading. */
  gcPauseMs: number;
  /** Warm-up before the open loop's measured messages (sent and loss-checked, not timed). */
  warmupMs: number;
  finishTimeoutMs: number;
  watchdogMs: number;
  profileDir: string | undefined;
  snapshotDir: string | undefined;
}

/** In-flight deliveries the closed loop aims at, over all client processes (unless --inflight is given). */
const INFLIGHT_DELIVERIES = 16_000;

/**
 * The systems a scenario runs on: ramp and pages load pages, which Socket.IO has none of; tabs needs
 * the shared stream, which only our chat has.
 */
export function systemsOf(s: Settings, scn: Scenario): System[] {
  if (scn.kind === "tabs") return s.systems.filter((x) => x === "embedded" || x === "nats");
  return scn.kind === "ramp" || scn.kind === "pages" ? s.systems.filter((x) => x !== "socketio") : s.systems;
}

/** The runs of a scenario on one system: tabs runs on a shared stream and on streams of their own. */
export function variantsOf(scn: Scenario): Array<Variant | undefined> {
  return scn.kind === "tabs" ? ["shared", "own"] : [undefined];
}

/** Client processes a scenario uses: pages has one tab. */
export function workersOf(s: Settings, scn: Scenario): number {
  return scn.kind === "pages" ? 1 : s.workers;
}

/** Closed loop: messages in flight per client process. */
export function inflightOf(s: Settings, scn: Scenario): number {
  if (s.inflight !== undefined) return s.inflight;
  const perRoom = scn.tabs / scn.rooms;
  return Math.min(128, Math.max(8, Math.ceil(INFLIGHT_DELIVERIES / s.workers / perRoom)));
}

/** Recipient deliveries `n` messages make in scenario `scn` (each room has tabs/rooms tabs; the sender is not one). */
export function recipientsOf(scn: Scenario, n: number): number {
  return n * (scn.tabs / scn.rooms - 1);
}

export function roomNames(n: number): string[] {
  return n === 1 ? ["Lobby"] : Array.from({ length: n }, (_, i) => `room-${String(i + 1).padStart(2, "0")}`);
}

/** A run's name in tables and log lines: the system, and the variant if the scenario has them. */
export function runLabel(system: System, variant: Variant | undefined): string {
  return variant ? `${system} ${variant}` : system;
}
