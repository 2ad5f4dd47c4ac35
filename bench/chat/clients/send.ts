// How a client process sends: a message is the system's own send request (our chat's "say" action,
// raw's POST, Socket.IO's emit), in an open loop (each at its scheduled time) or a closed loop (each
// slot sends the next once the last is complete here).
import { type Agent, request } from "node:http";
import { sleep } from "../../../harness/cleanup.ts";
import { wallNow } from "../../common/ipc.ts";
import type { ClosedLoopArgs, OpenLoopArgs, SendRecord, SendResult } from "../client-api.ts";
import { Histogram, type MessageSize, messageText } from "../shared.ts";
import { phase, resetMeasurement, sentBy, startWindow, waiting } from "./deliveries.ts";
import { byIndex, CountingAgent, counters, HOST, type Tab, tabs, world } from "./world.ts";

const postAgent = new CountingAgent({ keepAlive: true, maxSockets: 32 });

/**
 * POSTs and resolves with the status (-1: no response). A request that fails with a reset on a reused
 * keep-alive connection, before any response, is sent once more, as browsers do: the server closed
 * that idle connection (its keep-alive timeout) as the request went out, so nothing ran.
 */
export function post(
  path: string,
  headers: Record<string, string>,
  body: string,
  agent: Agent = postAgent,
  retry = true,
): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: HOST,
        port: world.port,
        path,
        method: "POST",
        agent,
        headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)) },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(-1));
      },
    );
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
        counters.staleRetries++;
        resolve(post(path, headers, body, agent, false));
        return;
      }
      counters.sendErrors++;
      if (!counters.sendErrorSample) counters.sendErrorSample = err.message;
      resolve(-1);
    });
    req.end(body);
  });
}

/** Sends message `seq` from tab `t`; resolves with the HTTP status (0 for Socket.IO, which has none). */
async function send(t: Tab, seq: number, size: MessageSize = "small"): Promise<number> {
  sentBy.set(seq, t);
  const sentAt = wallNow();
  const text = messageText(seq, sentAt, size);
  let status = 0;
  if (world.protocol === "socketio") t.io!.emit("say", text);
  else if (world.protocol === "raw") {
    status = await post(
      `/send?room=${encodeURIComponent(world.rooms[t.room]!)}`,
      { "Content-Type": "text/plain; charset=utf-8", Cookie: t.cookie },
      text,
    );
  } else {
    status = await post(
      `/_via/action/${t.actionId}`,
      { "Content-Type": "application/json", "Via-Request": "1", "Via-Tab": t.tabId, Cookie: t.cookie },
      JSON.stringify({ signals: { ...t.signals, statement: text } }),
    );
  }
  if (world.protocol !== "socketio") phase.requestHist.add(wallNow() - sentAt);
  counters.statuses[status] = (counters.statuses[status] ?? 0) + 1;
  return status;
}

const sleepUntil = (wall: number) => sleep(Math.max(0, wall - wallNow()));

/** Open loop: every message at its scheduled time, whatever the server does. */
export async function openLoop(args: OpenLoopArgs): Promise<SendResult> {
  resetMeasurement(args.measuredFrom);
  const windowAt = args.startAt + (args.measuredFrom - args.firstSeq) * args.intervalMs;
  const windowTimer = setTimeout(startWindow, Math.max(0, windowAt - wallNow()));
  const pending: Array<Promise<SendRecord>> = [];
  for (let k = 0; k < args.count; k++) {
    const t = byIndex.get(k % args.totalTabs);
    if (!t) continue;
    await sleepUntil(args.startAt + k * args.intervalMs);
    const seq = args.firstSeq + k;
    pending.push(send(t, seq, args.size).then((status) => [seq, t.room, t.index, status]));
  }
  const records = await Promise.all(pending);
  if (wallNow() < windowAt) {
    clearTimeout(windowTimer);
    startWindow();
  }
  return {
    records,
    windowDeliveries: 0,
    windowReads: 0,
    windowMs: 0,
    windowHist: new Histogram().toData(),
    stalls: 0,
    requestHist: phase.requestHist.toData(),
    confirmHist: phase.confirmHist.toData(),
    completeHist: phase.completeHist.toData(),
  };
}

/**
 * Closed loop: `inflight` slots; each sends a message from the next local tab (rotating), then waits
 * until it is complete here (every local tab of its room has it and its sender saw it "sent"), then
 * sends the next. Recipient deliveries arriving inside the window are counted.
 */
export async function closedLoop(args: ClosedLoopArgs): Promise<SendResult> {
  resetMeasurement(Number.POSITIVE_INFINITY);
  const local = [...tabs].sort((a, b) => a.index - b.index);
  const endAt = args.startAt + args.durationMs;
  const max = args.maxMessages ?? Number.POSITIVE_INFINITY;
  let n = 0;
  let rotate = 0;
  let stalls = 0;
  const records: SendRecord[] = [];
  await sleepUntil(args.startAt);
  phase.windowOpen = true;
  startWindow();
  const slot = async () => {
    while (wallNow() < endAt && n < max) {
      const t = local[rotate++ % local.length]!;
      const seq = args.seqBase + n++ * args.workers + args.workerIndex;
      let done!: () => void;
      const complete = new Promise<void>((r) => {
        done = r;
      });
      waiting.set(seq, { left: world.localRoomCount[t.room]!, done });
      const sentAt = wallNow();
      const status = await send(t, seq);
      records.push([seq, t.room, t.index, status]);
      if (status !== 0 && (status < 200 || status > 299)) {
        waiting.delete(seq);
        continue;
      }
      let timer: NodeJS.Timeout | undefined;
      const stalled = await Promise.race([
        complete.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), args.stallMs);
        }),
      ]);
      clearTimeout(timer);
      if (stalled) {
        stalls++;
        waiting.delete(seq);
      } else phase.completeHist.add(wallNow() - sentAt);
    }
  };
  // The window ends at endAt, or when the last slot is done (maxMessages), whichever comes first.
  let endWindow!: () => void;
  const windowEnd = new Promise<number>((resolve) => {
    endWindow = () => {
      phase.windowOpen = false;
      resolve(wallNow());
    };
  });
  const windowTimer = setTimeout(endWindow, Math.max(0, endAt - wallNow()));
  await Promise.all(Array.from({ length: args.inflight }, slot));
  clearTimeout(windowTimer);
  endWindow();
  const endedAt = await windowEnd;
  return {
    records,
    windowDeliveries: phase.windowDeliveries,
    windowReads: phase.windowReads,
    windowMs: endedAt - phase.windowStartedAt,
    windowHist: phase.windowHist.toData(),
    stalls,
    requestHist: phase.requestHist.toData(),
    confirmHist: phase.confirmHist.toData(),
    completeHist: phase.completeHist.toData(),
  };
}

/** Ends the keep-alive connections the sends used. */
export function closeSendConnections(): void {
  postAgent.destroy();
}
