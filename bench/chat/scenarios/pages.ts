// Scenario pages: page loads (new sessions) that never open their stream, then big messages from one
// attached tab into the same room; the server's memory before and after.
import { loadavg } from "node:os";
import { sleep } from "../../../harness/cleanup.ts";
import { kib, mib, sec } from "../../common/format.ts";
import { log } from "../../common/run.ts";
import type { PageLoadArgs, PageLoadResult } from "../client-api.ts";
import { readRss } from "../probes.ts";
import type { RunResult } from "../results.ts";
import { type Bench, baseResult, memory, mergeHist, openLoop, openTabs, sendTimes } from "../run.ts";
import { BIG_MESSAGE_BYTES, protocolOf } from "../shared.ts";

/** Page loads the pages scenario makes at once. */
const PAGE_CONCURRENCY = 16;

export async function runPages(b: Bench): Promise<RunResult> {
  const { scn, system, srv, workers } = b;
  const w = workers[0]!;
  const loadAtStart = loadavg()[0]!;
  await b.startProfile();
  // The sender: one attached tab, opened before the first reading.
  const ramp = await openTabs(b);
  const before = await memory(b);
  await b.snapshot(scn.tabs);
  const pages = await w.call<PageLoadResult>(
    "pageLoads",
    {
      protocol: protocolOf(system),
      port: srv.port,
      room: b.rooms[0]!,
      count: scn.pages!,
      concurrency: PAGE_CONCURRENCY,
      timeoutMs: 60_000,
    } satisfies PageLoadArgs,
    20 * 60_000,
  );
  await sleep(b.settings.settleMs);
  const rssAfterPages = readRss(srv.pid);
  log(
    `${scn.id}/${system}: ${pages.loaded} page loads without a stream in ${sec(pages.ms)} s ` +
      `(${kib(pages.bytes / Math.max(1, pages.loaded))} KiB each); server RSS ${mib(before.rss)} → ${mib(rssAfterPages)} MiB`,
  );
  const check = await openLoop(b, {
    count: scn.messages!,
    warmup: 0,
    totalTabs: 1,
    size: "big",
    callTimeoutMs: (scn.messages! / scn.rate) * 1000 + 120_000,
  });
  const result = baseResult(b, loadAtStart, before);
  result.timed = check.stats;
  const after = await memory(b);
  await b.snapshot("after-messages");
  Object.assign(result, {
    rampMs: ramp.ms,
    pagesLoaded: pages.loaded,
    pagesMs: pages.ms,
    pageBytes: pages.bytes,
    rssAfterPages,
    rssAfterTraffic: after.rss,
    gcAfterTraffic: after.gc,
    rssAfter: after.rss,
    natsRssAfter: after.natsRss,
  } satisfies Partial<RunResult>);
  log(
    `${scn.id}/${system}: ${check.sent} messages of ~${(BIG_MESSAGE_BYTES / 1000).toFixed(1)} KB sent (${check.rejected} refused), ` +
      `${result.timed.lostMessages} unconfirmed; server RSS ${mib(before.rss)} → ${mib(after.rss)} MiB ` +
      `(${after.rss >= before.rss ? "+" : ""}${mib(after.rss - before.rss)}); after forced GCs ${mib(before.gc.rss)} → ${mib(after.gc.rss)} MiB, ` +
      `heap used ${mib(before.gc.heapUsed)} → ${mib(after.gc.heapUsed)} MiB`,
  );
  log(`${scn.id}/${system}: ${sendTimes(check.sends)}`);
  const confirm = mergeHist(check.sends, "confirmHist");
  result.confirmP50 = confirm.percentile(50);
  result.confirmP99 = confirm.percentile(99);
  return result;
}
