// Which body runs a scenario: one module per kind of scenario (traffic covers a, b and the idle c).
import type { RunResult } from "../results.ts";
import { withBench } from "../run.ts";
import type { Scenario, Settings, Variant } from "../scenario.ts";
import type { System } from "../shared.ts";
import { runGrowth } from "./growth.ts";
import { runPages } from "./pages.ts";
import { runRamp } from "./ramp.ts";
import { runTabs } from "./tabs.ts";
import { runTraffic } from "./traffic.ts";

const BODIES = {
  traffic: runTraffic,
  idle: runTraffic,
  ramp: runRamp,
  pages: runPages,
  growth: runGrowth,
  tabs: runTabs,
} as const;

/** One run: scenario `scn` on `system` (and `variant`), on a fresh server and fresh client processes. */
export function runScenario(
  settings: Settings,
  scn: Scenario,
  system: System,
  variant: Variant | undefined,
): Promise<RunResult> {
  return withBench(settings, scn, system, variant, BODIES[scn.kind]);
}
