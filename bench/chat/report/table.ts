// bench:chat's tables: per scenario, a row per figure and a column per run (system, and variant),
// then the ratios of our chat against raw and Socket.IO (and, in the tabs scenario, shared streams
// against streams of their own). The figures' definitions are in bench/chat/cli.ts (DEFINITIONS).
import { kib, mib, ms, num, pct, ratio, sec } from "../../common/format.ts";
import {
  accepted,
  bytesPerDelivery,
  cpuPer1k,
  dupes,
  gcRssPerTab,
  growthOf,
  lostDeliveries,
  lostMessages,
  misrouted,
  msgsPerSec,
  pagesGcGrowth,
  pagesGrowth,
  type RunResult,
  refused,
  rssPerTab,
} from "../results.ts";
import { CONNECT_CONCURRENCY } from "../run.ts";
import { inflightOf, type Kind, runLabel, type Scenario, type Settings, type Variant, workersOf } from "../scenario.ts";
import { BIG_MESSAGE_BYTES, type System } from "../shared.ts";

export const labelOf = (r: RunResult) => runLabel(r.system, r.variant);

interface Metric {
  label: string;
  value: (r: RunResult) => number | undefined;
  format: (v: number) => string;
  /** Show ratios against raw and Socket.IO. */
  ratios?: boolean;
  /** Shown for which kinds of scenario. */
  kinds: Kind[];
}

/** An open loop (a, b; tabs has no closed loop, so its saturation rows stay empty and are left out). */
const TRAFFIC: Kind[] = ["traffic", "tabs"];
const TABS_MEMORY: Kind[] = ["traffic", "idle", "ramp", "tabs"];
const ALL_KINDS: Kind[] = ["traffic", "idle", "ramp", "pages", "growth", "tabs"];
const MESSAGE_KINDS: Kind[] = ["traffic", "idle", "pages", "growth", "tabs"];

const METRICS: Metric[] = [
  // tabs
  {
    label: "server TCP connections held, all tabs attached",
    value: (r) => r.serverConnections,
    format: (v) => num(v),
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "  per browser",
    value: (r) => (r.serverConnections !== undefined ? r.serverConnections / r.scenario.browsers! : undefined),
    format: (v) => v.toFixed(2),
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "  event-stream sockets held by the clients",
    value: (r) => r.clientStreamSockets,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  {
    label: "tabs with an open stream (/metrics via_streams_open)",
    value: (r) => r.streamsOpen,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  {
    label: "  shared streams (/metrics via_shared_streams)",
    value: (r) => r.sharedStreams,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  {
    label: "  tabs on a shared stream (/metrics via_shared_stream_tabs)",
    value: (r) => r.sharedTabs,
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  { label: "  sessions (/metrics via_sessions)", value: (r) => r.sessions, format: (v) => num(v), kinds: ["tabs"] },
  {
    label: "all tabs attached (s)",
    value: (r) => (r.scenario.kind === "tabs" ? r.rampMs : undefined),
    format: sec,
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "shared-stream lanes ended (via-tab-end)",
    value: (r) => (r.variant === "shared" ? r.counters.laneEnds : undefined),
    format: (v) => num(v),
    kinds: ["tabs"],
  },
  // ramp
  { label: "all tabs attached (s)", value: (r) => r.attachedMs, format: sec, ratios: true, kinds: ["ramp"] },
  {
    label: "presence N shown on a tab (s)",
    value: (r) => r.presenceFirstMs,
    format: sec,
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "presence N shown on every tab (s)",
    value: (r) => r.presenceAllMs,
    format: sec,
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "  tabs joined per second (to presence N on every tab)",
    value: (r) => (r.presenceAllMs ? (r.scenario.tabs / r.presenceAllMs) * 1000 : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "  tabs that showed presence N",
    value: (r) => r.presenceReached,
    format: (v) => num(v),
    kinds: ["ramp"],
  },
  {
    label: "  server CPU per joined tab (ms)",
    value: (r) => (r.rampCpuMs !== undefined ? r.rampCpuMs / r.scenario.tabs : undefined),
    format: (v) => v.toFixed(2),
    ratios: true,
    kinds: ["ramp"],
  },
  {
    label: "  server CPU during the ramp",
    value: (r) => r.rampServerCpuPct,
    format: pct,
    kinds: ["ramp"],
  },
  {
    label: "  busiest client process CPU during the ramp",
    value: (r) => r.rampClientCpuPct,
    format: pct,
    kinds: ["ramp"],
  },
  {
    label: "  whole-view renders sent on attach (stale page hash)",
    value: (r) => (r.scenario.kind === "ramp" ? r.counters.viewRenders : undefined),
    format: (v) => num(v),
    kinds: ["ramp"],
  },
  // pages
  {
    label: "page loads without a stream",
    value: (r) => r.pagesLoaded,
    format: (v) => num(v),
    kinds: ["pages"],
  },
  {
    label: "  page loads per second",
    value: (r) => (r.pagesLoaded && r.pagesMs ? (r.pagesLoaded / r.pagesMs) * 1000 : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "  page size (KiB)",
    value: (r) => (r.pageBytes && r.pagesLoaded ? r.pageBytes / r.pagesLoaded : undefined),
    format: kib,
    kinds: ["pages"],
  },
  {
    label: "server RSS before the page loads (MiB)",
    value: (r) => (r.scenario.kind === "pages" ? r.rssBefore : undefined),
    format: mib,
    kinds: ["pages"],
  },
  {
    label: "RSS growth after the page loads (MiB)",
    value: (r) => (r.rssAfterPages !== undefined ? r.rssAfterPages - r.rssBefore : undefined),
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "RSS growth after the page loads and the messages (MiB)",
    value: (r) => (r.scenario.kind === "pages" ? pagesGrowth(r) : undefined),
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "  the same after forced GCs (MiB)",
    value: (r) => (r.scenario.kind === "pages" ? pagesGcGrowth(r) : undefined),
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "  JS heap growth after forced GCs (MiB)",
    value: (r) =>
      r.scenario.kind === "pages" && r.gcAfterTraffic ? r.gcAfterTraffic.heapUsed - r.gcBefore.heapUsed : undefined,
    format: mib,
    ratios: true,
    kinds: ["pages"],
  },
  {
    label: "messages sent by the attached tab",
    value: (r) => (r.scenario.kind === "pages" ? r.timed?.sent : undefined),
    format: (v) => num(v),
    kinds: ["pages"],
  },
  {
    label: "  sender's confirmation p50 / p99 (ms)",
    value: (r) => (r.scenario.kind === "pages" ? r.confirmP99 : undefined),
    format: ms,
    kinds: ["pages"],
  },
  // growth
  {
    label: "messages (closed loop)",
    value: (r) => (r.scenario.kind === "growth" ? r.saturation?.sent : undefined),
    format: (v) => num(v),
    kinds: ["growth"],
  },
  {
    label: "  deliveries/s",
    value: (r) => (r.scenario.kind === "growth" ? r.saturation?.deliveriesPerSec : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["growth"],
  },
  {
    label: "RSS after forced GCs, tabs open, before the messages (MiB)",
    value: (r) => (r.scenario.kind === "growth" ? r.gcAfter.rss : undefined),
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  after the messages (MiB)",
    value: (r) => r.gcAfterTraffic?.rss,
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  RSS growth (%)",
    value: (r) => growthOf(r).rss * 100,
    format: (v) => v.toFixed(1),
    kinds: ["growth"],
  },
  {
    label: "JS heap used after forced GCs, before the messages (MiB)",
    value: (r) => (r.scenario.kind === "growth" ? r.gcAfter.heapUsed : undefined),
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  after the messages (MiB)",
    value: (r) => r.gcAfterTraffic?.heapUsed,
    format: mib,
    kinds: ["growth"],
  },
  {
    label: "  JS heap growth (%)",
    value: (r) => growthOf(r).heap * 100,
    format: (v) => v.toFixed(1),
    kinds: ["growth"],
  },
  {
    label: "RSS without forced GCs, before / after the messages (MiB)",
    value: (r) => (r.scenario.kind === "growth" ? r.rssAfter : undefined),
    format: mib,
    kinds: ["growth"],
  },
  // a, b
  { label: "latency p50 (ms)", value: (r) => r.timed?.hist.percentile(50), format: ms, ratios: true, kinds: TRAFFIC },
  { label: "latency p99 (ms)", value: (r) => r.timed?.hist.percentile(99), format: ms, ratios: true, kinds: TRAFFIC },
  { label: "latency max (ms)", value: (r) => r.timed?.hist.max, format: ms, ratios: true, kinds: TRAFFIC },
  {
    label: "measured deliveries (open loop)",
    value: (r) => r.timed?.deliveries,
    format: (v) => num(v),
    kinds: TRAFFIC,
  },
  {
    label: "bytes on the wire per delivery",
    value: bytesPerDelivery,
    format: (v) => num(v),
    ratios: true,
    kinds: TRAFFIC,
  },
  { label: "server CPU, open loop", value: (r) => r.timed?.serverCpuPct, format: pct, kinds: TRAFFIC },
  {
    label: "  server write system calls per 1,000 deliveries, open loop",
    value: (r) => (r.writeSyscalls !== undefined && r.timed ? (r.writeSyscalls / r.timed.expected) * 1000 : undefined),
    format: (v) => num(v),
    ratios: true,
    kinds: ["tabs"],
  },
  {
    label: "  server event-loop delay p99 / max, open loop (ms)",
    value: (r) => r.loopDelayP99,
    format: ms,
    kinds: ["tabs"],
  },
  {
    label: "server CPU per 1,000 deliveries, open loop (ms)",
    value: cpuPer1k,
    format: (v) => v.toFixed(1),
    ratios: true,
    kinds: TRAFFIC,
  },
  {
    label: "deliveries/s at saturation",
    value: (r) => r.saturation?.deliveriesPerSec,
    format: (v) => num(v),
    ratios: true,
    kinds: TRAFFIC,
  },
  { label: "  messages/s at saturation", value: (r) => msgsPerSec(r), format: (v) => num(v, 1), kinds: TRAFFIC },
  {
    label: "  latency p50 / p99 at saturation (ms)",
    value: (r) => r.saturation?.windowHist.percentile(50),
    format: ms,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  server CPU at saturation",
    value: (r) => r.saturation?.serverCpuPct,
    format: pct,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  server CPU per 1,000 deliveries (ms)",
    value: (r) => (r.saturation ? (r.saturation.serverCpuMs / r.saturation.expected) * 1000 : undefined),
    format: (v) => v.toFixed(1),
    ratios: true,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  deliveries per stream read (server batching)",
    value: (r) => r.saturation?.deliveriesPerRead,
    format: (v) => (Number.isFinite(v) ? v.toFixed(2) : "n/a"),
    kinds: ["traffic", "growth"],
  },
  {
    label: "  busiest client process CPU",
    value: (r) => r.saturation?.clientCpuPct,
    format: pct,
    kinds: ["traffic", "growth"],
  },
  {
    label: "  nats-server CPU at saturation",
    value: (r) => r.saturation?.natsCpuPct,
    format: pct,
    kinds: ["traffic", "growth"],
  },
  // tabs' memory
  { label: "RSS per tab (KiB)", value: rssPerTab, format: kib, ratios: true, kinds: [...TABS_MEMORY, "growth"] },
  {
    label: "  RSS per tab after forced GCs (KiB)",
    value: gcRssPerTab,
    format: kib,
    ratios: true,
    kinds: [...TABS_MEMORY, "growth"],
  },
  {
    label: "  JS heap per tab after forced GCs (KiB)",
    value: (r) => (r.gcAfter.heapUsed - r.gcBefore.heapUsed) / r.scenario.tabs,
    format: kib,
    ratios: true,
    kinds: [...TABS_MEMORY, "growth"],
  },
  {
    label: "server RSS before the first tab (MiB)",
    value: (r) => r.rssBefore,
    format: mib,
    kinds: [...TABS_MEMORY, "growth"],
  },
  { label: "server RSS after the traffic (MiB)", value: (r) => r.rssAfterTraffic, format: mib, kinds: TRAFFIC },
  {
    label: "  JS heap growth over the traffic, after forced GCs (MiB)",
    value: (r) => (r.gcAfterTraffic ? r.gcAfterTraffic.heapUsed - r.gcAfter.heapUsed : undefined),
    format: mib,
    ratios: true,
    kinds: TRAFFIC,
  },
  {
    label: "nats-server RSS per tab (KiB, not in the target)",
    value: (r) => (r.system === "nats" ? (r.natsRssAfter - r.natsRssBefore) / r.scenario.tabs : undefined),
    format: kib,
    kinds: TABS_MEMORY,
  },
  {
    label: "load average at the start (1 min)",
    value: (r) => r.loadAtStart,
    format: (v) => v.toFixed(2),
    kinds: ALL_KINDS,
  },
  {
    label: "ramp: all tabs open (s)",
    value: (r) => (r.scenario.kind === "tabs" ? undefined : r.rampMs / 1000),
    format: (v) => v.toFixed(1),
    kinds: ["traffic", "idle", "growth"],
  },
  { label: "sends refused (non-2xx)", value: (r) => refused(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  { label: "lost messages", value: (r) => lostMessages(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  { label: "lost deliveries", value: (r) => lostDeliveries(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  { label: "duplicate deliveries", value: (r) => dupes(r), format: (v) => num(v), kinds: MESSAGE_KINDS },
  {
    label: "streams closed during the run",
    value: (r) => r.counters.closed,
    format: (v) => num(v),
    kinds: ALL_KINDS,
  },
];

export function scenarioTitle(settings: Settings, s: Scenario): string {
  const phaseS = settings.phaseMs / 1000;
  const warmupS = settings.warmupMs / 1000;
  switch (s.kind) {
    case "idle":
      return `scenario ${s.id}: ${num(s.tabs)} idle tabs over ${s.rooms} room(s) (memory only)`;
    case "ramp":
      return (
        `scenario ramp: ${num(s.tabs)} tabs join one room, each a new session (page GET, then its stream), ` +
        `${CONNECT_CONCURRENCY} at a time × ${workersOf(settings, s)} client processes, until every tab shows presence ${num(s.tabs)}`
      );
    case "pages":
      return (
        `scenario pages: ${num(s.pages!)} page loads (new sessions) that never open their stream, then ` +
        `${num(s.messages!)} messages of ~${(BIG_MESSAGE_BYTES / 1000).toFixed(1)} KB at ${s.rate}/s from one attached tab, one room`
      );
    case "growth":
      return (
        `scenario growth: ${num(s.tabs)} tabs in one room, then ${num(s.messages!)} messages in a closed loop ` +
        `(${inflightOf(settings, s)} in flight × ${workersOf(settings, s)} client processes); memory after forced GCs before and after`
      );
    case "tabs":
      return (
        `scenario tabs: ${num(s.browsers!)} browsers × ${s.tabsPerBrowser} tabs = ${num(s.tabs)} tabs in ${s.rooms} room(s), ` +
        `each browser one session; "shared": one /_via/mux stream per browser with its tabs attached, "own": a ` +
        `stream per tab (a fresh server each); then ${s.rate} msg/s open loop for ${phaseS} s ` +
        `(+${warmupS} s warm-up)`
      );
    default:
      return (
        `scenario ${s.id}: ${num(s.tabs)} tabs over ${s.rooms} room(s), ${s.rate} msg/s open loop for ${phaseS} s ` +
        `(+${warmupS} s warm-up); closed loop ${inflightOf(settings, s)} in flight × ${workersOf(settings, s)} client processes for ${phaseS} s`
      );
  }
}

export interface TableData {
  header: string[];
  rows: string[][];
  /**
   * The numbers behind the rows: label → run → value, and (rows with ratios) comparison → ratio, as
   * the columns name them; null where there is none.
   */
  values: Array<{ label: string; values: Record<string, number | null>; ratios?: Record<string, number | null> }>;
}

/** A figure for --json: null when there is none (not measured, or not a finite number). */
const known = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : v);
/** a ÷ b for --json, where the table shows a ratio ("n/a" there is null here). */
const quotient = (a: number | undefined, b: number | undefined) => {
  const [x, y] = [known(a), known(b)];
  return x !== null && y !== null && y > 0 ? x / y : null;
};

export function scenarioTable(scn: Scenario, results: RunResult[]): TableData {
  const by = (s: System) => results.find((r) => r.system === s);
  const ours = (["embedded", "nats"] as const).filter((s) => by(s));
  const bases = (["raw", "socketio"] as const).filter((s) => by(s));
  // tabs: each system's shared stream against its own streams.
  const pairs = ours.filter(
    (s) =>
      results.some((r) => r.system === s && r.variant === "shared") &&
      results.some((r) => r.system === s && r.variant === "own"),
  );
  const variantOf = (s: System, v: Variant) => results.find((r) => r.system === s && r.variant === v)!;
  const comparisons = [
    ...ours.flatMap((s) => bases.map((base) => ({ name: `${s} / ${base}`, a: by(s)!, b: by(base)! }))),
    ...pairs.map((s) => ({ name: `${s} shared / own`, a: variantOf(s, "shared"), b: variantOf(s, "own") })),
  ];
  const header = ["metric", ...results.map(labelOf), ...comparisons.map((c) => c.name)];
  const rows: string[][] = [];
  const values: TableData["values"] = [];
  for (const m of METRICS) {
    if (!m.kinds.includes(scn.kind)) continue;
    const vals = results.map((r) => m.value(r));
    if (vals.every((v) => v === undefined)) continue;
    let cells = vals.map((v) => (v === undefined ? "" : m.format(v)));
    if (m.label.startsWith("  latency p50 / p99")) {
      cells = results.map((r) =>
        r.saturation
          ? `${ms(r.saturation.windowHist.percentile(50))} / ${ms(r.saturation.windowHist.percentile(99))}`
          : "",
      );
    } else if (m.label.startsWith("  sender's confirmation")) {
      cells = results.map((r) =>
        r.timed ? `${ms(r.confirmP50 ?? Number.NaN)} / ${ms(r.confirmP99 ?? Number.NaN)}` : "",
      );
    } else if (m.label.startsWith("  server event-loop delay")) {
      cells = results.map((r) => `${ms(r.loopDelayP99 ?? Number.NaN)} / ${ms(r.loopDelayMax ?? Number.NaN)}`);
    } else if (m.label.startsWith("RSS without forced GCs")) {
      cells = results.map((r) => `${mib(r.rssAfter)} / ${mib(r.rssAfterTraffic ?? Number.NaN)}`);
    }
    const ratioCells = comparisons.map((c) => (m.ratios ? ratio(m.value(c.a), m.value(c.b)) : ""));
    rows.push([m.label, ...cells, ...ratioCells]);
    values.push({
      label: m.label.trim(),
      values: Object.fromEntries(results.map((r, i) => [labelOf(r), known(vals[i])])),
      ...(m.ratios && comparisons.length > 0
        ? { ratios: Object.fromEntries(comparisons.map((c) => [c.name, quotient(m.value(c.a), m.value(c.b))])) }
        : {}),
    });
  }
  return { header, rows, values };
}

/** What a run saw that the table does not show (refused sends, error toasts, resets, …); empty when nothing. */
export function runNotes(r: RunResult): string[] {
  const c = r.counters;
  const n: string[] = [];
  const statuses = Object.entries(c.statuses).filter(([k]) => !accepted(Number(k)));
  if (statuses.length > 0) n.push(`refused sends by status: ${statuses.map(([k, v]) => `${k}×${v}`).join(", ")}`);
  if (c.toasts > 0) n.push(`${c.toasts} error toasts (${c.toastSample})`);
  if (c.resyncs > 0) n.push(`${c.resyncs} #messages resets (inner)`);
  if (c.byes > 0) n.push(`${c.byes} via-bye/via-reload`);
  if (c.failed > 0) n.push(`${c.failed} messages marked "not sent"`);
  if (c.unexpected > 0) n.push(`${c.unexpected} unexpected items/patches (first: ${c.unexpectedSample})`);
  if (c.outOfOrder > 0) n.push(`${c.outOfOrder} stored copies out of position order`);
  if (c.upserts > 0) n.push(`${c.upserts} upserts of an item the tab held`);
  if (c.viewRenders > 0) n.push(`${c.viewRenders} whole-view renders`);
  if (c.trims > 0 || c.prepends > 0) n.push(`${c.trims} list trims, ${c.prepends} prepends`);
  if (c.staleRetries > 0) n.push(`${c.staleRetries} requests repeated after a reset on a stale keep-alive connection`);
  if (c.sendErrors > 0) n.push(`${c.sendErrors} send errors (${c.sendErrorSample})`);
  if (r.saturation && r.saturation.stalls > 0) n.push(`${r.saturation.stalls} closed-loop stalls`);
  const mis = misrouted(r);
  if (mis > 0) n.push(`${mis} deliveries to a tab of another room`);
  if (c.laneEnds > 0) n.push(`${c.laneEnds} shared-stream lanes ended (via-tab-end)`);
  return n;
}
