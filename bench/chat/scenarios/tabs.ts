// Scenario tabs: B browsers × T tabs, on one shared stream per browser or on a stream of their own per
// tab (b.variant); the server's connections and memory with every tab attached, then the open loop
// (a message reaching every tab of the room) with the server's write system calls and event-loop delay.
import { ms, num, sec } from "../../common/format.ts";
import { log } from "../../common/run.ts";
import { readWriteSyscalls, scrapeMetrics, serverConnections } from "../probes.ts";
import type { RunResult } from "../results.ts";
import { type Bench, begin, logTabs, openBrowsers, openLoopPhase, tabsOpened, trafficDone } from "../run.ts";

export async function runTabs(b: Bench): Promise<RunResult> {
  const { scn, srv } = b;
  const start = await begin(b);
  const opened = await openBrowsers(b);
  // tabsOpened() reads the memory after a settle delay: the page loads' and attach requests'
  // connections are closed by then.
  const { result } = await tabsOpened(b, start, opened.ms);
  const connections = serverConnections(srv.port);
  const metrics = await scrapeMetrics(srv.port);
  const metric = (name: string) => metrics.get(name) ?? Number.NaN;
  Object.assign(result, {
    serverConnections: connections,
    clientStreamSockets: opened.streamSockets,
    clientOpenSockets: opened.openSockets,
    streamsOpen: metric("via_streams_open"),
    sharedStreams: metric("via_shared_streams"),
    sharedTabs: metric("via_shared_stream_tabs"),
    liveTabs: metric("via_tabs"),
    sessions: metric("via_sessions"),
  } satisfies Partial<RunResult>);
  log(
    `${b.label}: ${num(scn.browsers!)} browsers × ${scn.tabsPerBrowser} tabs attached in ${sec(opened.ms)} s: ` +
      `${num(connections)} server connections, ${num(opened.streamSockets)} stream sockets at the clients ` +
      `(${num(opened.openSockets)} sockets open); /metrics: ${num(result.streamsOpen!)} tabs streaming, ` +
      `${num(result.sharedStreams!)} shared streams carrying ${num(result.sharedTabs!)} tabs, ` +
      `${num(result.liveTabs!)} tabs, ${num(result.sessions!)} sessions`,
  );
  logTabs(b, result);
  await b.startProfile();
  // prom-client resets its event-loop delay histogram at each scrape: the next one covers the open loop.
  await scrapeMetrics(srv.port);
  const syscalls = readWriteSyscalls(srv.pid);
  result.timed = await openLoopPhase(b);
  result.writeSyscalls = readWriteSyscalls(srv.pid) - syscalls;
  const loop = await scrapeMetrics(srv.port);
  result.loopDelayP99 = (loop.get("nodejs_eventloop_lag_p99_seconds") ?? Number.NaN) * 1000;
  result.loopDelayMax = (loop.get("nodejs_eventloop_lag_max_seconds") ?? Number.NaN) * 1000;
  log(
    `${b.label}: server event-loop delay over the open loop: p99 ${ms(result.loopDelayP99)}, max ${ms(result.loopDelayMax)} ms`,
  );
  await trafficDone(b, result);
  return result;
}
