// Scenario growth: tabs in one room, then a fixed number of messages in a closed loop; the server's
// memory after forced GCs before and after the messages.
import { mib, signedPct } from "../../common/format.ts";
import { log } from "../../common/run.ts";
import { growthOf, type RunResult } from "../results.ts";
import { type Bench, begin, closedLoop, logTabs, memory, openTabs, tabsOpened } from "../run.ts";

export async function runGrowth(b: Bench): Promise<RunResult> {
  const { scn, system } = b;
  const start = await begin(b);
  const ramp = await openTabs(b);
  const { result, after: open } = await tabsOpened(b, start, ramp.ms);
  logTabs(b, result);
  await b.startProfile();
  result.saturation = await closedLoop(b, scn.messages!);
  const after = await memory(b);
  result.rssAfterTraffic = after.rss;
  result.gcAfterTraffic = after.gc;
  await b.snapshot("after-messages");
  const g = growthOf(result);
  log(
    `${scn.id}/${system}: ${result.saturation.sent} messages; after forced GCs RSS ${mib(open.gc.rss)} → ` +
      `${mib(after.gc.rss)} MiB (${signedPct(g.rss)}), heap used ${mib(open.gc.heapUsed)} → ` +
      `${mib(after.gc.heapUsed)} MiB (${signedPct(g.heap)})`,
  );
  return result;
}
