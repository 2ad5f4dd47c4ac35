// bench:sse's tables: via against the raw node:http broadcast (memory per tab, fan-out latency,
// throughput, CPU, GC), and with --h2 via by transport. Each row is kept as numbers for --json and
// printed as text; fan-out rows are the median over the rounds, losses their sum.
import { median } from "../../harness/stats.ts";
import { kib, mib, ms, ratio } from "../common/format.ts";
import type { MemorySample } from "./fanout.ts";
import type { FanoutRun, MemoryRun, SseSettings } from "./phases.ts";

export const TARGET_KIB_PER_TAB = 20;
export const TARGET_P99_RATIO = 2;

export function perTab(run: MemoryRun, i: number, field: keyof MemorySample = "rss"): number {
  const level = run.levels[i]!;
  return (level.mem[field] - run.base[field]) / level.tabs;
}

/** Growth per tab between the two levels: the steady per-tab cost, without one-off warm-up growth. */
export function marginal(run: MemoryRun, field: keyof MemorySample = "rss"): number {
  const [a, b] = [run.levels[0]!, run.levels[1]!];
  return (b.mem[field] - a.mem[field]) / (b.tabs - a.tabs);
}

/**
 * RSS per tab minus V8's young generation: the young generation grows with the allocation rate (page
 * renders while ramping), not with the number of tabs, and is a one-off of up to ~32 MiB.
 */
function perTabExYoung(run: MemoryRun, i: number): number {
  const level = run.levels[i]!;
  return (level.mem.rss - level.mem.newSpace - (run.base.rss - run.base.newSpace)) / level.tabs;
}

/** Fan-out rounds of one server kind folded into medians (losses are summed: any loss counts). */
export interface FanoutSummary {
  p50: number;
  p99: number;
  max: number;
  p99s: number[];
  deliveriesPerSec: number;
  received: number;
  expected: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  closedStreams: number;
  cpuPer1k: number;
  publishP50: number;
  publishMax: number;
  gcMsPerSec: number;
  gcMax: number;
  gcMajor: number;
  eventBytes: number;
  clientCpuPct: number;
}

export function summarize(runs: FanoutRun[], seconds: number): FanoutSummary {
  const m = (f: (r: FanoutRun) => number) => median(runs.map(f));
  const sum = (f: (r: FanoutRun) => number) => runs.reduce((acc, r) => acc + f(r), 0);
  return {
    p50: m((r) => r.client.p50),
    p99: m((r) => r.client.p99),
    max: m((r) => r.client.max),
    p99s: runs.map((r) => r.client.p99),
    deliveriesPerSec: m((r) => r.deliveriesPerSec),
    received: sum((r) => r.client.received),
    expected: sum((r) => r.expected),
    lost: sum((r) => r.lost),
    duplicates: sum((r) => r.client.duplicates),
    outOfOrder: sum((r) => r.client.outOfOrder),
    closedStreams: sum((r) => r.client.closedStreams),
    cpuPer1k: m((r) => (r.server.cpuMs / Math.max(1, r.client.received)) * 1000),
    publishP50: m((r) => r.server.publishP50Ms),
    publishMax: m((r) => r.server.publishMaxMs),
    gcMsPerSec: m((r) => r.server.gcTotalMs / seconds),
    gcMax: m((r) => r.server.gcMaxMs),
    gcMajor: sum((r) => r.server.gcMajorCount),
    eventBytes: runs[0]!.server.eventBytes,
    clientCpuPct: m((r) => (r.client.cpuMs / r.client.wallMs) * 100),
  };
}

/** A table as printed (cells) and as data (--json: the numbers behind each row, the ratios included). */
export interface Table {
  header: string[];
  rows: string[][];
  data: Array<Record<string, unknown>>;
}

const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");

/** via against raw: memory rows (both memory runs) and fan-out rows (both fan-out summaries). */
export function comparisonTable(
  s: SseSettings,
  mem: { via: MemoryRun; raw: MemoryRun } | undefined,
  fan: { via: FanoutSummary; raw: FanoutSummary } | undefined,
): Table & { memOk: boolean; p99Ratio: number; lossOk: boolean } {
  const table: Table = {
    header: ["metric", "via", "raw node:http", "via / raw", "target", "result"],
    rows: [],
    data: [],
  };
  const row = (metric: string, via: number, raw: number, fmt: (x: number) => string, target = "", result = "") => {
    table.rows.push([metric, fmt(via), fmt(raw), ratio(via, raw), target, result]);
    table.data.push({ metric, via, raw, ratio: via / raw, target, result });
  };
  const textRow = (metric: string, via: string, raw: string, target = "", result = "", data = {}) => {
    table.rows.push([metric, via, raw, "", target, result]);
    table.data.push({ metric, via, raw, target, result, ...data });
  };
  let memOk = true;
  if (mem) {
    const levels = s.memLevels;
    for (let i = 0; i < levels.length; i++) {
      const via = perTab(mem.via, i);
      const ok = via <= TARGET_KIB_PER_TAB * 1024;
      memOk &&= ok;
      row(`RSS per idle tab @${levels[i]} (KiB)`, via, perTab(mem.raw, i), kib, `≤ ${TARGET_KIB_PER_TAB}`, verdict(ok));
    }
    for (let i = 0; i < levels.length; i++) {
      row(
        `  same, excluding V8 young generation @${levels[i]} (KiB)`,
        perTabExYoung(mem.via, i),
        perTabExYoung(mem.raw, i),
        kib,
      );
    }
    const span = `${levels[0]}→${levels[1]}`;
    row(`RSS per tab, marginal ${span} (KiB)`, marginal(mem.via), marginal(mem.raw), kib);
    row(`JS heap per tab, marginal ${span} (KiB)`, marginal(mem.via, "heapUsed"), marginal(mem.raw, "heapUsed"), kib);
    row("RSS baseline, no tab (MiB)", mem.via.base.rss, mem.raw.base.rss, mib);
  }
  let p99Ratio = Number.NaN;
  let lossOk = true;
  if (fan) {
    const { via: v, raw: r } = fan;
    p99Ratio = v.p99 / r.p99;
    lossOk = v.lost === 0 && v.duplicates === 0 && v.outOfOrder === 0;
    const whole = (x: number) => x.toFixed(0);
    const tenth = (x: number) => x.toFixed(1);
    row("fan-out latency p50 (ms)", v.p50, r.p50, ms);
    row(
      "fan-out latency p99 (ms)",
      v.p99,
      r.p99,
      ms,
      `≤ ${TARGET_P99_RATIO}× raw`,
      verdict(p99Ratio <= TARGET_P99_RATIO),
    );
    row("fan-out latency max (ms)", v.max, r.max, ms);
    if (s.rounds > 1) {
      textRow("p99 of each round (ms)", v.p99s.map(ms).join(", "), r.p99s.map(ms).join(", "), "", "", {
        via: v.p99s,
        raw: r.p99s,
      });
    }
    row("deliveries/s", v.deliveriesPerSec, r.deliveriesPerSec, whole);
    textRow("deliveries received / expected", `${v.received}/${v.expected}`, `${r.received}/${r.expected}`, "", "", {
      via: { received: v.received, expected: v.expected },
      raw: { received: r.received, expected: r.expected },
    });
    textRow("lost deliveries", String(v.lost), String(r.lost), "0", verdict(lossOk), { via: v.lost, raw: r.lost });
    row("server CPU per 1000 deliveries (ms)", v.cpuPer1k, r.cpuPer1k, tenth);
    row("publish to all tabs, JS part, p50 (ms)", v.publishP50, r.publishP50, ms);
    row("publish to all tabs, JS part, max (ms)", v.publishMax, r.publishMax, ms);
    row("server GC pause (ms per s)", v.gcMsPerSec, r.gcMsPerSec, tenth);
    row("server longest GC pause (ms)", v.gcMax, r.gcMax, ms);
    textRow("server full GCs (all rounds)", String(v.gcMajor), String(r.gcMajor), "", "", {
      via: v.gcMajor,
      raw: r.gcMajor,
    });
    textRow("bytes per event", String(v.eventBytes), String(r.eventBytes), "", "", {
      via: v.eventBytes,
      raw: r.eventBytes,
    });
    textRow("client process CPU (% of one core)", v.clientCpuPct.toFixed(0), r.clientCpuPct.toFixed(0), "", "", {
      via: v.clientCpuPct,
      raw: r.clientCpuPct,
    });
  }
  return { ...table, memOk, p99Ratio, lossOk };
}

/** via by transport (--h2): plain HTTP/1.1, HTTP/1.1 over TLS, HTTP/2 over TLS; h2 against each of the others. */
export function transportTable(
  s: SseSettings,
  mem: [MemoryRun, MemoryRun, MemoryRun] | undefined,
  fan: [FanoutSummary, FanoutSummary, FanoutSummary] | undefined,
): Table {
  const table: Table = {
    header: [
      "via by transport",
      "HTTP/1.1",
      "HTTP/1.1 + TLS",
      `HTTP/2 + TLS (${s.h2Streams}/conn)`,
      "h2 / HTTP/1.1",
      "h2 / h1.1 + TLS",
    ],
    rows: [],
    data: [],
  };
  const row = (metric: string, cells: number[], fmt: (x: number) => string) => {
    const [http, https, h2] = cells as [number, number, number];
    table.rows.push([metric, ...cells.map(fmt), ratio(h2, http), ratio(h2, https)]);
    table.data.push({ metric, http, https, h2, h2VsHttp: h2 / http, h2VsHttps: h2 / https });
  };
  if (mem) {
    const levels = s.memLevels;
    for (let i = 0; i < levels.length; i++) {
      row(
        `RSS per idle tab @${levels[i]} (KiB)`,
        mem.map((r) => perTab(r, i)),
        kib,
      );
    }
    for (let i = 0; i < levels.length; i++) {
      row(
        `  same, excluding V8 young generation @${levels[i]} (KiB)`,
        mem.map((r) => perTabExYoung(r, i)),
        kib,
      );
    }
    row(
      `RSS per tab, marginal ${levels[0]}→${levels[1]} (KiB)`,
      mem.map((r) => marginal(r)),
      kib,
    );
    row(
      `JS heap per tab, marginal ${levels[0]}→${levels[1]} (KiB)`,
      mem.map((r) => marginal(r, "heapUsed")),
      kib,
    );
    row(
      "RSS baseline, no tab (MiB)",
      mem.map((r) => r.base.rss),
      mib,
    );
  }
  if (fan) {
    const figures: Array<[string, keyof FanoutSummary, (x: number) => string]> = [
      ["fan-out latency p50 (ms)", "p50", ms],
      ["fan-out latency p99 (ms)", "p99", ms],
      ["fan-out latency max (ms)", "max", ms],
      ["deliveries/s", "deliveriesPerSec", (x) => x.toFixed(0)],
      ["lost deliveries", "lost", String],
      ["server CPU per 1000 deliveries (ms)", "cpuPer1k", (x) => x.toFixed(1)],
      ["server GC pause (ms per s)", "gcMsPerSec", (x) => x.toFixed(1)],
      ["client process CPU (% of one core)", "clientCpuPct", (x) => x.toFixed(0)],
    ];
    for (const [metric, key, fmt] of figures) {
      row(
        metric,
        fan.map((x) => x[key] as number),
        fmt,
      );
    }
  }
  return table;
}
