// Scenarios a and b (traffic) and c (idle): the tabs, their memory, then (a, b) the open loop at the
// scenario's rate and the closed loop at saturation.
import type { RunResult } from "../results.ts";
import { type Bench, begin, closedLoop, logTabs, openLoopPhase, openTabs, tabsOpened, trafficDone } from "../run.ts";

export async function runTraffic(b: Bench): Promise<RunResult> {
  const start = await begin(b);
  // --profile: the ramp in an idle scenario, else the traffic phases.
  if (b.scn.kind === "idle") await b.startProfile();
  const ramp = await openTabs(b);
  const { result } = await tabsOpened(b, start, ramp.ms);
  logTabs(b, result);
  if (b.scn.kind === "idle") return result;

  await b.startProfile();
  result.timed = await openLoopPhase(b);
  result.saturation = await closedLoop(b);
  await trafficDone(b, result);
  return result;
}
