// Browser entry: wires the signal store, triggers, actions and the event stream (docs/PROTOCOL.md).
import { initActions, sendAction } from "./actions.ts";
import { connect, type Fields, reconnectNow, retry, state, whenOnline } from "./connection.ts";
import { armToasts, followBottom, initEnhancements, localizeTimes, stuckToBottom } from "./enhance.ts";
import { isObject, parseJson } from "./json.ts";
import { patchElements } from "./patch.ts";
import { initSignals, patchSignals, refresh, type Signals, snapshot } from "./signals.ts";
import { installTriggers } from "./triggers.ts";

interface Boot {
  tab: string;
  signals: Signals;
  v: string;
  /** The shared worker's script (absent: every tab keeps a stream of its own). */
  w?: string;
  /** A hidden tab on a stream of its own releases it after this long (ms; 0: never). */
  p?: number;
}

declare global {
  interface Window {
    __via?: { signals(): Signals; state(): string };
  }
}

function dispatch(type: string, fields: Fields): Promise<void> | undefined {
  switch (type) {
    case "datastar-patch-elements": {
      const stuck = stuckToBottom();
      return patchElements(fields, () => {
        // Newly inserted bound elements take the signal values, except the one being typed in.
        refresh(null, document.activeElement);
        followBottom(stuck);
        localizeTimes();
        armToasts();
      });
    }
    case "datastar-patch-signals": {
      const patch = parseJson(fields.get("signals") ?? "{}");
      if (isObject(patch)) patchSignals(patch, fields.get("onlyIfMissing") === "true");
      return;
    }
    case "via-reload":
      location.reload();
      return;
    case "via-bye":
      retry();
  }
}

// A view transition applies its patch asynchronously; events behind it wait so the page still
// sees them in stream order.
let backlog: Promise<void> | null = null;

function onEvent(type: string, fields: Fields): void {
  const wait = backlog ? backlog.then(() => dispatch(type, fields)) : dispatch(type, fields);
  if (!wait) return;
  const mine: Promise<void> = wait
    .catch((err) => console.error("via: failed to apply event", type, err))
    .then(() => {
      if (backlog === mine) backlog = null;
    });
  backlog = mine;
}

function start(): void {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="via-boot"]');
  if (!meta) {
    console.warn("via: no via-boot meta; runtime idle");
    return;
  }
  const boot = parseJson(meta.content) as Boot;
  initSignals(isObject(boot.signals) ? boot.signals : {});
  installTriggers(sendAction);
  initActions(
    boot.tab,
    () => {
      reconnectNow();
      return whenOnline(10_000);
    },
    whenOnline(10_000),
  );
  window.__via = Object.freeze({ signals: snapshot, state });
  initEnhancements();
  connect(
    {
      tab: boot.tab,
      version: boot.v,
      workerUrl: typeof boot.w === "string" ? boot.w : undefined,
      parkAfterMs: Number(boot.p) || 0,
    },
    onEvent,
  );
}

start();
