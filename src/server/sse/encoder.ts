// Datastar v1 Server-Sent Event encoder. Produces the exact bytes the official SDKs write
// (pinned by the shared conformance cases in test/unit/sse-cases.test.ts), so the browser runtime
// and any stock Datastar client read our stream the same way.
//
// Framing rules (from the datastar-go SDK):
//   event: <type>
//   id: <id>                 only if set
//   retry: <ms>              only if set and different from the client default (1000)
//   data: <key> <value>      one line per line of a multi-line value
//   <blank line>
//
// Safety: SSE treats "\r\n", "\n" and a lone "\r" as line ends. Multi-line values are normalised to
// "\n" and split into one `data:` line each; single-line fields (event name, id, selector, data keys)
// refuse line breaks outright, because silently rewriting a selector or id would address the wrong
// thing, and letting it through would let a value inject its own fields or events.

export type PatchMode = "outer" | "inner" | "replace" | "prepend" | "append" | "before" | "after" | "remove";

export type PatchNamespace = "html" | "svg" | "mathml";

export interface EventMeta {
  /** Written as `id:`; the browser echoes the last one back as Last-Event-ID on reconnect. */
  eventId?: string;
  /** Reconnect delay in ms, written as `retry:` unless it equals the client default. */
  retryDuration?: number;
}

export interface PatchElementsOptions extends EventMeta {
  selector?: string;
  mode?: PatchMode;
  useViewTransition?: boolean;
  namespace?: PatchNamespace;
}

export interface PatchSignalsOptions extends EventMeta {
  onlyIfMissing?: boolean;
}

export interface ExecuteScriptOptions extends EventMeta {
  /** Extra attributes on the `<script>` tag, in insertion order. Values are HTML-escaped. */
  attributes?: Record<string, string>;
  /** Remove the script element once it ran (default true). */
  autoRemove?: boolean;
}

export const PATCH_ELEMENTS_EVENT = "datastar-patch-elements";
export const PATCH_SIGNALS_EVENT = "datastar-patch-signals";
/** The EventSource reconnect delay a Datastar client assumes when the stream says nothing. */
export const DEFAULT_RETRY_MS = 1000;

const PATCH_MODES: ReadonlySet<string> = new Set([
  "outer",
  "inner",
  "replace",
  "prepend",
  "append",
  "before",
  "after",
  "remove",
]);

const LINE_BREAK = /[\r\n]/;
const ANY_NEWLINE = /\r\n|\r|\n/;
// A data key is the first word of a data line; readers split on the first space.
const DATA_KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;
// HTML attribute names: no whitespace, quotes, `>`, `/`, `=` or control characters.
const ATTRIBUTE_NAME = /^[^\s"'>/=\p{Cc}]+$/u;

function singleLine(field: string, value: string): string {
  if (LINE_BREAK.test(value)) {
    throw new TypeError(`SSE ${field} must not contain a line break: ${JSON.stringify(value.slice(0, 80))}`);
  }
  return value;
}

/** Splits a value into lines, treating \r\n, \r and \n alike so a stray \r cannot end a field early. */
function lines(value: string): string[] {
  return value.split(ANY_NEWLINE);
}

function header(event: string, meta: EventMeta | undefined): string {
  let out = `event: ${singleLine("event name", event)}\n`;
  if (meta?.eventId !== undefined && meta.eventId !== "") {
    out += `id: ${singleLine("event id", meta.eventId)}\n`;
  }
  const retry = meta?.retryDuration;
  if (retry !== undefined) {
    if (!Number.isInteger(retry) || retry < 0) {
      throw new RangeError(`SSE retryDuration must be a non-negative integer of ms, got ${retry}`);
    }
    if (retry !== DEFAULT_RETRY_MS) out += `retry: ${retry}\n`;
  }
  return out;
}

function dataLines(key: string, value: string): string {
  let out = "";
  for (const line of lines(value)) out += `data: ${key} ${line}\n`;
  return out;
}

/** `datastar-patch-elements`: morph/insert/remove HTML in the page. */
export function patchElements(elements: string | undefined, opts: PatchElementsOptions = {}): string {
  let out = header(PATCH_ELEMENTS_EVENT, opts);
  if (opts.selector !== undefined && opts.selector !== "") {
    out += `data: selector ${singleLine("selector", opts.selector)}\n`;
  }
  const mode = opts.mode ?? "outer";
  if (!PATCH_MODES.has(mode)) throw new TypeError(`unknown patch mode ${JSON.stringify(mode)}`);
  if (mode !== "outer") out += `data: mode ${mode}\n`;
  if (opts.useViewTransition === true) out += "data: useViewTransition true\n";
  if (opts.namespace !== undefined && opts.namespace !== "html") {
    out += `data: namespace ${singleLine("namespace", opts.namespace)}\n`;
  }
  if (elements !== undefined && elements !== "") out += dataLines("elements", elements);
  return `${out}\n`;
}

/**
 * The same event with an `id:` line: `event` must be an encoded event without an id (e.g. from
 * patchElements with no eventId). Lets one encoding of a broadcast serve every tab, each with its own id.
 */
export function withEventId(event: string, eventId: string): string {
  const nl = event.indexOf("\n");
  if (!event.startsWith("event: ") || nl < 0 || event.startsWith("id: ", nl + 1)) {
    throw new TypeError("withEventId needs an encoded event that has no id yet");
  }
  return `${event.slice(0, nl + 1)}id: ${singleLine("event id", eventId)}\n${event.slice(nl + 1)}`;
}

/**
 * `datastar-patch-signals`: a JSON merge patch (RFC 7386) for the browser's signal store.
 * An object is serialised with JSON.stringify (one line: JSON escapes newlines inside strings);
 * a string is taken as already-serialised JSON and split on its line breaks.
 */
export function patchSignals(signals: Record<string, unknown> | string, opts: PatchSignalsOptions = {}): string {
  let out = header(PATCH_SIGNALS_EVENT, opts);
  if (opts.onlyIfMissing === true) out += "data: onlyIfMissing true\n";
  const json = typeof signals === "string" ? signals : JSON.stringify(signals);
  out += dataLines("signals", json);
  return `${out}\n`;
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
}

/**
 * Runs a script in the browser by appending a `<script>` to `body` (the Datastar v1 way: v1 has no
 * separate execute-script event). The script text is written as given: the caller owns it.
 * Note the default CSP (script-src 'self') blocks inline scripts, so this is for apps that relax it.
 */
export function executeScript(script: string, opts: ExecuteScriptOptions = {}): string {
  let tag = "<script";
  if (opts.autoRemove !== false) tag += ' data-effect="el.remove()"';
  for (const [name, value] of Object.entries(opts.attributes ?? {})) {
    if (!ATTRIBUTE_NAME.test(name)) throw new TypeError(`invalid script attribute name ${JSON.stringify(name)}`);
    tag += ` ${name}="${escapeAttribute(value)}"`;
  }
  tag += `>${script}</script>`;
  return patchElements(tag, {
    selector: "body",
    mode: "append",
    eventId: opts.eventId,
    retryDuration: opts.retryDuration,
  });
}

/**
 * One of our own events (`via-reload`, `via-bye`): `data: <key> <value>` lines in the given order.
 * A multi-line value becomes several lines with the same key, as Datastar does for `elements`.
 */
export function customEvent(name: string, data: Array<[key: string, value: string]>, meta?: EventMeta): string {
  let out = header(name, meta);
  for (const [key, value] of data) {
    if (!DATA_KEY.test(key)) throw new TypeError(`invalid SSE data key ${JSON.stringify(key)}`);
    out += dataLines(key, value);
  }
  return `${out}\n`;
}

/** An SSE comment (`: text`), ignored by clients; used as a keepalive so proxies keep the stream open. */
export function comment(text: string): string {
  let out = "";
  for (const line of lines(text)) out += line === "" ? ":\n" : `: ${line}\n`;
  return `${out}\n`;
}
