// `npm run bench:chat`: load on the chat through its real protocol, with protocol-level clients (no
// browsers), next to a raw node:http SSE chat (the ceiling for Node) and a Socket.IO 4 chat under the
// same clients pattern, in one run. Our chat runs twice: on the embedded engine and on a nats-server.
//
// Per scenario and system: a fresh server process, client processes (bench/chat/clients.ts) that open
// the tabs, then what the scenario measures: (a, b) an open-loop phase at a fixed message rate
// (latency, bytes on the wire) and a closed-loop phase (deliveries/s at saturation), with a loss
// check after each; (c) memory with idle tabs; (ramp) tabs joining one room until its presence shows
// them all; (pages) memory after page loads that never open their stream; (growth) memory before and
// after a fixed number of messages; (tabs) browsers with several tabs each on one shared stream per
// browser, against the same tabs on a stream of their own each: server connections, memory per tab,
// a message reaching every tab. Definitions: bench/chat/cli.ts (DEFINITIONS, also in --help) and
// docs/BENCHMARKS.md ("Chat under load").
//
// The parts: the command line and settings (bench/chat/cli.ts), the scenarios (bench/chat/scenario.ts
// and bench/chat/scenarios/), one run's machinery (bench/chat/run.ts), the tables and targets
// (bench/chat/report/).

import { cpus } from "node:os";
import { exitOnSignals } from "../harness/cleanup.ts";
import { runMain } from "../harness/cli.ts";
import { markdownTable, Table } from "../harness/stats.ts";
import { chatCommand, DEFINITIONS, settingsOf } from "./chat/cli.ts";
import { labelOf, runNotes, scenarioTable, scenarioTitle, type TableData } from "./chat/report/table.ts";
import { TARGET, type TargetRow, targets } from "./chat/report/targets.ts";
import { dupes, lostDeliveries, lostMessages, type RunResult, rampTime } from "./chat/results.ts";
import { runLabel, systemsOf, type Variant, variantsOf } from "./chat/scenario.ts";
import { runScenario } from "./chat/scenarios/index.ts";
import { PRESENCE_TIMEOUT_MS } from "./chat/scenarios/ramp.ts";
import { Histogram, MESSAGE_CHARS, SYSTEM_LABEL, type System } from "./chat/shared.ts";
import { loadText, watchdog } from "./common/run.ts";

const cli = chatCommand();

async function main(): Promise<number> {
  const settings = settingsOf(cli);
  const { scenarios, systems } = settings;
  exitOnSignals();
  const stopWatchdog = watchdog("bench:chat", settings.watchdogMs, "min");
  const [title, command] = cli.header();
  const cpuModel = cpus()[0]?.model.trim() ?? "unknown";
  const loadBefore = loadText();
  const plan =
    `scenarios ${scenarios.map((s) => s.id).join(", ")} × systems ${systems.join(", ")}; ` +
    `${settings.workers} client processes; ${MESSAGE_CHARS}-byte messages; settle ${settings.settleMs} ms before each RSS reading`;
  console.log(title);
  console.log(command);
  console.log(`node:    ${process.version} (${process.platform}/${process.arch})`);
  console.log(`cpu:     ${cpuModel} × ${cpus().length} cores`);
  console.log(`date:    ${new Date().toISOString()}`);
  console.log(`load:    ${loadBefore} (1/5/15 min load average before the run)`);
  console.log(`plan:    ${plan}`);
  console.log(`systems: ${systems.map((s) => `${s} = ${SYSTEM_LABEL[s]}`).join("; ")}`);
  console.log(DEFINITIONS);
  console.log("");

  const started = performance.now();
  const results: RunResult[] = [];
  const failures: Array<{ scenario: string; system: System; variant?: Variant; error: string }> = [];
  for (const scn of scenarios) {
    console.log(scenarioTitle(settings, scn));
    for (const system of systemsOf(settings, scn)) {
      for (const variant of variantsOf(scn)) {
        try {
          results.push(await runScenario(settings, scn, system, variant));
        } catch (err) {
          const error = String((err as Error).stack ?? err);
          failures.push({ scenario: scn.id, system, ...(variant ? { variant } : {}), error });
          process.stderr.write(`bench:chat: ${scn.id}/${runLabel(system, variant)} failed: ${error}\n`);
        }
      }
    }
    console.log("");
  }

  const tables: Array<{ scenario: string; title: string; table: TableData; notes: string[] }> = [];
  for (const scn of scenarios) {
    const rs = results.filter((r) => r.scenario === scn);
    if (rs.length === 0) continue;
    const data = scenarioTable(scn, rs);
    const notes: string[] = [];
    const title = scenarioTitle(settings, scn);
    console.log(title);
    console.log(markdownTable(data.header, data.rows));
    for (const r of rs) {
      const n = runNotes(r);
      if (n.length > 0) {
        notes.push(`${labelOf(r)}: ${n.join("; ")}`);
        console.log(`  ${labelOf(r)}: ${n.join("; ")}`);
      }
    }
    console.log("");
    tables.push({ scenario: scn.id, title, table: data, notes });
  }

  const targetRows = targets(scenarios, results);
  const resultText = (t: TargetRow) => (t.met === undefined ? "n/a" : t.met ? "MET" : "MISSED");
  const targetTable = new Table(
    ["target", "scenario", "system", "measured", "result"],
    targetRows.map((t) => [t.target, t.scenario, t.system, t.measured, resultText(t)]),
  );
  if (targetRows.length > 0) {
    console.log("targets (our chat, and raw's ramp; a missed target does not fail the run):");
    console.log(`${targetTable}\n`);
  }

  const losses = results.map((r) => ({
    scenario: r.scenario.id,
    run: labelOf(r),
    messages: lostMessages(r),
    deliveries: lostDeliveries(r),
    duplicates: dupes(r),
  }));
  for (const l of losses) {
    console.log(
      `lost ${l.scenario}/${l.run}: ${l.messages} messages, ${l.deliveries} deliveries, ${l.duplicates} duplicates`,
    );
  }
  const lossy = losses.filter((l) => l.messages > 0 || l.deliveries > 0 || l.duplicates > 0);
  // A ramp whose presence never reached N on every tab measured nothing: a failure, like a broken run.
  const stuck = results.filter((r) => r.scenario.kind === "ramp" && !Number.isFinite(rampTime(r)));
  for (const r of stuck) {
    console.log(
      `ramp/${r.system}: presence ${r.scenario.tabs} showed on ${r.presenceReached}/${r.scenario.tabs} tabs within ` +
        `${PRESENCE_TIMEOUT_MS / 1000} s (highest count seen ${r.presenceMax})`,
    );
  }
  const loadAfter = loadText();
  const tookSeconds = Math.round((performance.now() - started) / 1000);
  console.log(`load average after the run: ${loadAfter}`);
  console.log(`took ${tookSeconds} s`);
  stopWatchdog();

  let exitCode = 0;
  let verdict = "ok";
  if (lossy.length > 0) {
    verdict = `FAIL: messages were lost or duplicated in ${lossy.map((l) => `${l.scenario}/${l.run}`).join(", ")}`;
    exitCode = 1;
  } else if (failures.length > 0 || stuck.length > 0) {
    verdict = "FAIL: a run broke (see the errors above)";
    exitCode = 1;
  }

  if (cli.jsonFile) {
    // Histograms go out as their summary figures (the buckets are for merging, not for reading).
    const histogram = (h: Histogram) => ({
      n: h.n,
      p50: h.percentile(50),
      p99: h.percentile(99),
      max: h.max,
      mean: h.n > 0 ? h.sum / h.n : null,
    });
    const plain = (r: RunResult) =>
      JSON.parse(JSON.stringify(r, (_key, v: unknown) => (v instanceof Histogram ? histogram(v) : v)));
    cli.writeJson({
      plan,
      settings: { ...settings, scenarios: scenarios.map((s) => s.id) },
      loadBefore,
      loadAfter,
      tookSeconds,
      exitCode,
      verdict,
      targetsDefinition: TARGET,
      tables,
      targets: targetRows.map((t) => ({ ...t, result: resultText(t) })),
      targetTable: { title: "targets (our chat, and raw's ramp)", table: targetTable },
      losses,
      results: results.map((r) => ({ ...plain(r), scenario: r.scenario.id, scenarioSpec: r.scenario })),
      failures,
    });
    console.log(`json:    ${cli.jsonFile}`);
  }
  if (exitCode !== 0) console.log(verdict);
  return exitCode;
}

runMain(main);
