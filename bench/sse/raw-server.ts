// bench:sse baseline server child: the least a node:http SSE broadcast can do. It keeps a Set of
// open responses and writes one pre-encoded event (the same bytes a via tab gets for the same
// message) to each of them at the same rate. No sessions, no per-connection state, no backpressure.
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { appendEvent, startEventStream } from "../common/event-stream.ts";
import { PAYLOAD_TEXT, serveFanout, stamp } from "./fanout.ts";

const streams = new Set<ServerResponse>();

function encode(seq: number): string {
  return appendEvent(seq, "#feed", `<li data-t="${stamp(seq)}">${PAYLOAD_TEXT}</li>`);
}

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url?.startsWith("/sse")) {
    startEventStream(res);
    streams.add(res);
    res.on("close", () => streams.delete(res));
    return;
  }
  res.writeHead(404).end();
});

await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

let eventBytes = 0;
serveFanout({
  port,
  status: () => ({ streams: streams.size }),
  receivers: () => streams.size,
  publish: (seq) => {
    const event = encode(seq);
    eventBytes = Buffer.byteLength(event);
    for (const res of streams) res.write(event);
  },
  eventBytes: () => eventBytes,
});
