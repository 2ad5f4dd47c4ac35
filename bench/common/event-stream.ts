// The server side of the raw node:http baselines (bench:sse's broadcast, bench:chat's chat): an event
// stream opened and an element appended the way via does it, so the clients read both the same way.
import type { ServerResponse } from "node:http";

/** Starts an event-stream response: the SSE headers, sent at once. */
export function startEventStream(res: ServerResponse): void {
  res.writeHead(200, {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  });
  res.flushHeaders();
}

/** The Datastar event that appends `html` to `selector`, as event `id` (the bytes via writes for one). */
export function appendEvent(id: number, selector: string, html: string): string {
  return `event: datastar-patch-elements\nid: ${id}\ndata: selector ${selector}\ndata: mode append\ndata: elements ${html}\n\n`;
}
