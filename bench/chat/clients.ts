// bench:chat client process: holds a share of the simulated tabs of one run, sends their messages and
// records every message that reaches them. The orchestrator (bench/chat.ts) runs several of these so
// client work never shares a process with a server.
//
// A tab speaks the system's own protocol:
// - via (our chat, either engine): `GET /room/<name>` without a cookie (a new browser session: the
//   tab's own cookie jar), the session cookie, `via-boot` (tab id, signals, runtime version), the view's
//   hash (`data-via-hash`), what the #messages list holds (newest `data-via-pos`, item count,
//   `data-via-more`) and the `say` action id (the Send button's `data-on-click`) read from the page;
//   then, as the runtime does, `GET /_via/sse?tab=…&path=…&v=…&h=<hash>&streams=messages:<newest>:
//   <count>:<more>` on the same keep-alive connection (a raw socket, as a browser reuses it), before
//   any action (an action of a tab whose stream never attached gets 410). A message is
//   `POST /_via/action/<say>` with `Via-Request: 1`, `Via-Tab`, the cookie and
//   `{"signals":{...bootSignals,"statement":text}}`.
// - raw: `GET /room/<name>` (a static page and a new cookie), then `GET /sse?room=R` on the same
//   connection; a message is `POST /send?room=R` with the text as body.
// - via, browsers with several tabs (the tabs scenario, `connectBrowsers`): a browser is one session
//   (one cookie jar); it loads its T pages one after another on one keep-alive connection (the first
//   without a cookie, the others with the session's), each page a tab id. Then either, as the runtime's
//   shared worker does, ONE `GET /_via/mux` (the cookie; `event: via-mux` / `data: id <id>`) and each
//   tab's `POST /_via/attach?<its stream query>&mux=<id>&slot=<n>` (`Via-Request: 1`, the cookie; 204),
//   slots 1…T; or a `GET /_via/sse?…` of its own per tab (today's way without the worker). The shared
//   stream's events are routed by slot: `event: via-tab` / `data: slot <n>` names the tab whose events
//   follow, `via-tab-end` ends a lane (counted, and the tab counts as closed).
// - socketio: socket.io-client over WebSocket (`transports: ["websocket"]`), the room in the handshake
//   query; a message is `emit("say", text)`.
//
// Delivery: an SSE tab parses the stream (chunked transfer decoding when the response uses it, events
// split on blank lines) and reads the `<li … class="chat-message…" id="m-…">` items of patches into
// #messages; the text (HTML-unescaped) carries the seq and the send stamp. A recipient's delivery is the
// message's stored copy: an `append` into #messages of an item with a `data-via-pos`. An item whose id
// this tab already holds (an upsert in place) is not a new delivery; the same text under two different
// ids is a duplicate. Our chat's sender sees its own message first as an `append` marked "sending"
// (from the action), then as the stored copy or an ack patch (same id, no longer "sending"): the first
// of those is the sender's confirmation. raw and Socket.IO echo the message to the sender too: the
// echo is its confirmation. Presence: the count in `#presence` patches, per tab. Bytes on the wire are
// `bytesRead` of every socket this process opened.
//
// The parts (bench/chat/clients/): the tabs and counters (world.ts), opening tabs and browsers
// (connect.ts), reading what reaches them and the loss check (deliveries.ts), sending (send.ts).

import { serveIpc } from "../common/ipc.ts";
import type {
  BrowsersArgs,
  ClosedLoopArgs,
  ConnectArgs,
  FinishArgs,
  OpenLoopArgs,
  PageLoadArgs,
  PresenceArgs,
} from "./client-api.ts";
import { connectAll, connectBrowsers, pageLoads, waitForPresence } from "./clients/connect.ts";
import { finish } from "./clients/deliveries.ts";
import { closedLoop, closeSendConnections, openLoop } from "./clients/send.ts";
import { browsers, counters, tabs, world } from "./clients/world.ts";

serveIpc(
  {
    connect: (args) => connectAll(args as ConnectArgs),
    connectBrowsers: (args) => connectBrowsers(args as BrowsersArgs),
    presence: (args) => waitForPresence(args as PresenceArgs),
    pageLoads: (args) => pageLoads(args as PageLoadArgs),
    openLoop: (args) => openLoop(args as OpenLoopArgs),
    closedLoop: (args) => closedLoop(args as ClosedLoopArgs),
    finish: (args) => finish(args as FinishArgs),
    counters: () => counters,
    stop: () => {
      world.running = false;
      for (const t of tabs) {
        t.sock?.destroy();
        t.io?.disconnect();
      }
      for (const br of browsers) br.sock?.destroy();
      closeSendConnections();
      return tabs.length;
    },
  },
  { pid: process.pid },
);
