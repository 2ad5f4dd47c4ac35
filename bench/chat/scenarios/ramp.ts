// Scenario ramp: N new sessions join one room (page GET, then its stream), until all are attached and
// every tab shows the room's presence count N.
import { sec } from "../../common/format.ts";
import { log } from "../../common/run.ts";
import type { PresenceArgs, PresenceResult } from "../client-api.ts";
import type { RunResult } from "../results.ts";
import { type Bench, begin, logTabs, openTabs, tabsOpened } from "../run.ts";

/** How long every tab may take to show the room's presence count N once all are attached. */
export const PRESENCE_TIMEOUT_MS = 30_000;

export async function runRamp(b: Bench): Promise<RunResult> {
  const { scn, system, workers } = b;
  const start = await begin(b);
  await b.startProfile();
  const m = b.meters();
  const ramp = await openTabs(b, scn.tabs);
  const pres = await Promise.all(
    workers.map((w) =>
      w.call<PresenceResult>(
        "presence",
        { timeoutMs: PRESENCE_TIMEOUT_MS } satisfies PresenceArgs,
        PRESENCE_TIMEOUT_MS + 30_000,
      ),
    ),
  );
  const rampCpuMs = m.server.firstMs();
  const rampClientCpuPct = m.clients.maxPct();
  const rampServerCpuPct = m.server.maxPct();
  const reached = pres.reduce((a, p) => a + p.reached, 0);
  const firsts = pres.map((p) => p.firstAt).filter((t) => t > 0);
  const all = pres.every((p) => p.allAt > 0) ? Math.max(...pres.map((p) => p.allAt)) : Number.NaN;
  const { result } = await tabsOpened(b, start, ramp.ms);
  Object.assign(result, {
    attachedMs: ramp.endAt - ramp.startAt,
    presenceFirstMs: firsts.length > 0 ? Math.min(...firsts) - ramp.startAt : Number.NaN,
    presenceAllMs: all - ramp.startAt,
    presenceReached: reached,
    presenceMax: Math.max(...pres.map((p) => p.maxSeen)),
    rampCpuMs,
    rampServerCpuPct,
    rampClientCpuPct,
  } satisfies Partial<RunResult>);
  log(
    `${scn.id}/${system}: ${scn.tabs} tabs attached in ${sec(result.attachedMs!)} s; presence ${scn.tabs} on a tab at ` +
      `${sec(result.presenceFirstMs!)} s, on every tab at ${sec(result.presenceAllMs!)} s ` +
      `(${reached}/${scn.tabs} tabs showed it; highest count seen ${result.presenceMax}); server CPU ` +
      `${(rampCpuMs / 1000).toFixed(1)} s`,
  );
  logTabs(b, result);
  return result;
}
