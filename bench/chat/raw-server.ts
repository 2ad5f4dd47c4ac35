// bench:chat baseline (i): the least a node:http chat over SSE can do, the ceiling for Node. Rooms are
// Sets of open responses; `POST /send?room=R` (the text as the body) writes one pre-encoded event to
// every stream of room R, the sender's own included, and answers 204. The event is the same Datastar
// `append` patch our chat sends for a stored message (a shorter <li>, with its position as
// `data-via-pos`), so the same client code reads both. A keepalive comment every 15 s, as our chat
// sends. No per-connection state beyond the Set, no backpressure.
//
// Like a browser tab of the chat, a tab first loads `GET /room/<name>`: a small static page and a new
// session cookie (random; the server keeps nothing for it), then opens `GET /sse?room=R` (on the same
// connection, from bench:chat's clients). Presence as the chat does it: a room's count of open
// streams, sent to the room as one `#presence` outer patch once per interval while it changes (the
// chat's interval: 100 ms, or 1 ms per 10 tabs if more, at most 2 s), encoded once per room.
import { randomBytes } from "node:crypto";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { escapeHtml } from "../../src/server/html.ts";
import { appendEvent, startEventStream } from "../common/event-stream.ts";
import { serveIpc } from "../common/ipc.ts";

const MAX_BODY = 8192;
const KEEPALIVE_MS = 15_000;
const MIN_INTERVAL_MS = 100;
const MAX_INTERVAL_MS = 2_000;

interface Room {
  streams: Set<ServerResponse>;
  /** Count last sent to the room. */
  shown: number;
  timer: NodeJS.Timeout | undefined;
}

const rooms = new Map<string, Room>();
let nextId = 0;
let streams = 0;

function roomOf(name: string): Room {
  let room = rooms.get(name);
  if (!room) {
    room = { streams: new Set(), shown: 0, timer: undefined };
    rooms.set(name, room);
  }
  return room;
}

function presenceHtml(count: number): string {
  return (
    '<section id="presence" aria-label="Who is here">' +
    `<span class="count">${count === 1 ? "1 person here" : `${count.toLocaleString("en")} people here`}</span>` +
    "</section>"
  );
}

function presenceChanged(room: Room): void {
  if (room.timer) return;
  const interval = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, Math.floor(room.streams.size / 10)));
  room.timer = setTimeout(() => {
    room.timer = undefined;
    const count = room.streams.size;
    if (count === room.shown) return;
    room.shown = count;
    const event = `event: datastar-patch-elements\ndata: selector #presence\ndata: elements ${presenceHtml(count)}\n\n`;
    for (const stream of room.streams) stream.write(event);
  }, interval);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (req.method === "GET" && url.pathname.startsWith("/room/")) {
    const name = decodeURIComponent(url.pathname.slice("/room/".length));
    const room = roomOf(name);
    res.writeHead(200, {
      "Content-Type": "text/html; charset=utf-8",
      "Cache-Control": "no-store",
      "Set-Cookie": `sid=${randomBytes(16).toString("base64url")}; Path=/; HttpOnly; SameSite=Lax`,
    });
    res.end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(name)}</title></head>` +
        `<body><main>${presenceHtml(room.shown)}<ol id="messages"></ol></main></body></html>`,
    );
    return;
  }
  if (req.method === "GET" && url.pathname === "/sse") {
    startEventStream(res);
    const room = roomOf(url.searchParams.get("room") ?? "");
    room.streams.add(res);
    streams++;
    presenceChanged(room);
    res.on("close", () => {
      room.streams.delete(res);
      streams--;
      presenceChanged(room);
    });
    return;
  }
  if (req.method === "POST" && url.pathname === "/send") {
    const room = roomOf(url.searchParams.get("room") ?? "");
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
      if (body.length > MAX_BODY) req.destroy();
    });
    req.on("end", () => {
      const id = ++nextId;
      const event = appendEvent(
        id,
        "#messages",
        `<li data-via-pos="${id}" class="chat-message" id="m-${id}"><p class="text">${escapeHtml(body)}</p></li>`,
      );
      for (const stream of room.streams) stream.write(event);
      res.writeHead(204).end();
    });
    return;
  }
  res.writeHead(404).end();
});

setInterval(() => {
  for (const room of rooms.values()) for (const stream of room.streams) stream.write(": keepalive\n\n");
}, KEEPALIVE_MS).unref();

await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as AddressInfo;

serveIpc({ status: () => ({ streams, rooms: rooms.size }) }, { port });
