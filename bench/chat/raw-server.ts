// bench:chat baseline (i): the least a node:http chat over SSE can do, the ceiling for Node. Rooms are
// Sets of open responses; `POST /send?room=R` (the text as the body) writes one pre-encoded event to
// every stream of room R, the sender's own included, and answers 204. The event is the same Datastar
// `append` patch our chat sends (a shorter <li>), so the same client code reads both. A keepalive
// comment every 15 s, as our chat sends. No sessions, no per-connection state, no backpressure.
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { escapeHtml } from "../../src/server/html.ts";
import { serveIpc } from "../sse/ipc.ts";

const MAX_BODY = 4096;
const KEEPALIVE_MS = 15_000;
const rooms = new Map<string, Set<ServerResponse>>();
let nextId = 0;
let streams = 0;

function roomOf(url: URL): Set<ServerResponse> {
  const name = url.searchParams.get("room") ?? "";
  let room = rooms.get(name);
  if (!room) {
    room = new Set();
    rooms.set(name, room);
  }
  return room;
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (req.method === "GET" && url.pathname === "/sse") {
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache, no-transform",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    res.flushHeaders();
    const room = roomOf(url);
    room.add(res);
    streams++;
    res.on("close", () => {
      room.delete(res);
      streams--;
    });
    return;
  }
  if (req.method === "POST" && url.pathname === "/send") {
    const room = roomOf(url);
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
      if (body.length > MAX_BODY) req.destroy();
    });
    req.on("end", () => {
      const id = ++nextId;
      const event =
        "event: datastar-patch-elements\n" +
        `id: ${id}\n` +
        "data: selector #messages\n" +
        "data: mode append\n" +
        `data: elements <li class="chat-message" id="m-${id}"><p class="text">${escapeHtml(body)}</p></li>\n\n`;
      for (const stream of room) stream.write(event);
      res.writeHead(204).end();
    });
    return;
  }
  res.writeHead(404).end();
});

setInterval(() => {
  for (const room of rooms.values()) for (const stream of room) stream.write(": keepalive\n\n");
}, KEEPALIVE_MS).unref();

await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

serveIpc({ status: () => ({ streams, rooms: rooms.size }) }, { port });
