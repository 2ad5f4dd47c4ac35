// bench:chat baseline (ii): a Socket.IO 4 chat with its default in-memory adapter. A client names its
// room in the handshake query and is joined to it on connection; a "say" event with the text is sent
// to the whole room (the sender included) with `io.to(room).emit("msg", …)`. Default server options.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { serveIpc } from "../common/ipc.ts";

const MAX_TEXT = 2000;
const httpServer = createServer();
const io = new Server(httpServer);

io.on("connection", (socket) => {
  const room = String(socket.handshake.query.room ?? "");
  socket.join(room);
  socket.on("say", (text: unknown) => {
    if (typeof text !== "string" || text.length === 0 || text.length > MAX_TEXT) return;
    io.to(room).emit("msg", { id: randomUUID(), from: socket.id, text, time: Date.now() });
  });
});

await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
const { port } = httpServer.address() as AddressInfo;

serveIpc({ status: () => ({ sockets: io.engine.clientsCount }) }, { port });
