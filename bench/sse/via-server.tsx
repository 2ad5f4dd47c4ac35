// bench:sse server child: a via app with one page whose live tabs all listen to one in-process publisher.
// On command it fans a `c.patch("#feed", <li …>, "append")` out to every tab at a fixed rate, or
// reports its memory after a forced GC. Run with --expose-gc (the orchestrator does). With
// `--tls-cert <file> --tls-key <file>` it serves HTTPS: HTTP/2, and HTTP/1.1 for clients without it.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createApp, createLogger } from "../../src/index.ts";
import { renderHtml } from "../../src/server/html.ts";
import { patchElements } from "../../src/server/sse/encoder.ts";
import { PAYLOAD_TEXT, serveFanout, stamp } from "./fanout.ts";

// Thousands of streams from one machine: per-address limits off.
const app = createApp({ title: "bench:sse", logger: createLogger("silent"), clientLimits: false });

// What the page's tabs subscribe to: one callback per tab, called once per tick with the stamp.
const listeners = new Set<(stamp: string) => void>();

app.page("/", (c) => {
  // The page GET runs this in a throwaway context: only the live one (its stream attached) listens.
  if (c.live) {
    const onTick = (t: string) => {
      c.patch("#feed", <li data-t={t}>{PAYLOAD_TEXT}</li>, "append");
    };
    listeners.add(onTick);
    c.onDispose(() => listeners.delete(onTick));
  }
  c.view(() => (
    <main>
      <h1>bench:sse</h1>
      <ul id="feed"></ul>
    </main>
  ));
});

const { values } = parseArgs({ options: { "tls-cert": { type: "string" }, "tls-key": { type: "string" } } });
const tls =
  values["tls-cert"] && values["tls-key"]
    ? { cert: readFileSync(values["tls-cert"]), key: readFileSync(values["tls-key"]) }
    : undefined;
const { port } = await app.listen(0, "127.0.0.1", { handleSignals: false, ...(tls ? { tls } : {}) });

// The bytes one delivery costs on the wire, measured on the real encoder: the event a tab gets.
function sampleEventBytes(): number {
  const html = renderHtml(<li data-t={stamp(100)}>{PAYLOAD_TEXT}</li>);
  return Buffer.byteLength(patchElements(html, { selector: "#feed", mode: "append", eventId: "100" }));
}

serveFanout({
  port,
  status: () => ({ tabs: app.tabCount, listeners: listeners.size }),
  receivers: () => listeners.size,
  publish: (seq) => {
    const t = stamp(seq);
    for (const fn of listeners) fn(t);
  },
  eventBytes: sampleEventBytes,
});
