// bench:sse baseline server child: the least a node:http SSE broadcast can do. It keeps a Set of
// open responses and writes one pre-encoded event (the same bytes a via tab gets for the same
// message) to each of them at the same rate. No sessions, no per-connection state, no backpressure.
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type FanoutArgs,
  type FanoutResult,
  heapSnapshot,
  PAYLOAD_TEXT,
  runTicks,
  serveIpc,
  settledMemory,
  stamp,
} from "./ipc.ts";

const streams = new Set<ServerResponse>();

function encode(seq: number): string {
  return (
    "event: datastar-patch-elements\n" +
    `id: ${seq}\n` +
    "data: selector #feed\n" +
    "data: mode append\n" +
    `data: elements <li data-t="${stamp(seq)}">${PAYLOAD_TEXT}</li>\n\n`
  );
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url?.startsWith("/sse")) {
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache, no-transform",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    res.flushHeaders();
    streams.add(res);
    res.on("close", () => streams.delete(res));
    return;
  }
  res.writeHead(404).end();
});

await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

serveIpc(
  {
    memory: (args) => settledMemory((args as { settleMs: number }).settleMs),
    heapSnapshot,
    status: () => ({ streams: streams.size }),
    fanout: async (args): Promise<FanoutResult> => {
      let eventBytes = 0;
      const run = await runTicks(args as FanoutArgs, (seq) => {
        const event = encode(seq);
        eventBytes = Buffer.byteLength(event);
        for (const res of streams) res.write(event);
      });
      return { ...run, receivers: streams.size, eventBytes };
    },
  },
  { port },
);
