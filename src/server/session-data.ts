// Session data as values and as a stored record. A session's data is JSON, because it is what every
// instance and the next start of this one read back: `session.set` takes a frozen deep copy of a JSON
// value, or refuses the value with a SessionDataError that says where it is not JSON. The record the
// engine store (session-store.ts) keeps is `{"v":1,"data":{...}}`, at most MAX_SESSION_BYTES.

/** A session's data as stored (its JSON record) is at most this big. */
export const MAX_SESSION_BYTES = 64 * 1024;
const MAX_KEY_CHARS = 256;
const MAX_DEPTH = 64;

/** One key's value: a frozen JSON copy of what was set, and its JSON text (what the record holds). */
export interface SessionEntry {
  value: unknown;
  json: string;
}

/** Thrown by `session.set` for a value that is not JSON, or data that would be too big. */
export class SessionDataError extends TypeError {
  override name = "SessionDataError";
}

function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_CHARS) {
    throw new SessionDataError(`session data keys are strings of 1-${MAX_KEY_CHARS} characters, got ${String(key)}`);
  }
}

/** The entry for `session.set(key, value)`; throws SessionDataError, saying where, if it is not JSON. */
export function sessionEntry(key: string, value: unknown): SessionEntry {
  checkKey(key);
  const copy = jsonCopy(value, "", [], (where, what) => {
    throw new SessionDataError(
      `session.set(${JSON.stringify(key)}): ${what}${where ? ` at ${where}` : ""} is not JSON. Session data is ` +
        "stored as JSON (for every instance, across restarts): plain objects, arrays, strings, finite numbers, " +
        "booleans and null. Keep per-process values with session.memo(key, make).",
    );
  });
  return { value: copy, json: JSON.stringify(copy) };
}

function describe(value: object): string {
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "" ? `a ${name}` : "an object with a prototype of its own";
}

/** A deep, frozen copy of `value` if it is plain JSON; else calls `fail` (which throws). */
function jsonCopy(
  value: unknown,
  path: string,
  ancestors: object[],
  fail: (where: string, what: string) => never,
): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) fail(path, `${value} (not a finite number)`);
      return value;
    case "undefined":
      return fail(path, "undefined (use session.delete to remove a key)");
    case "object": {
      if (value === null) return null;
      if (ancestors.includes(value)) fail(path, "a circular reference");
      if (ancestors.length >= MAX_DEPTH) fail(path, `nesting deeper than ${MAX_DEPTH} levels`);
      ancestors.push(value);
      let copy: unknown[] | Record<string, unknown>;
      if (Array.isArray(value)) {
        if (Object.getPrototypeOf(value) !== Array.prototype) fail(path, describe(value));
        copy = [];
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) fail(`${path}[${i}]`, "a hole in an array");
          copy.push(jsonCopy(value[i], `${path}[${i}]`, ancestors, fail));
        }
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) fail(path, describe(value));
        if (Object.getOwnPropertySymbols(value).length > 0) fail(path, "an object with symbol keys");
        copy = {};
        for (const k of Object.keys(value)) {
          const v = jsonCopy((value as Record<string, unknown>)[k], `${path}.${k}`, ancestors, fail);
          // defineProperty: a key named "__proto__" (from JSON.parse of user input) stays a plain key.
          Object.defineProperty(copy, k, { value: v, enumerable: true, writable: true, configurable: true });
        }
      }
      ancestors.pop();
      return Object.freeze(copy);
    }
    default:
      return fail(path, `a ${typeof value}`);
  }
}

function deepFreeze(value: unknown): unknown {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The stored size of data with these entries (the record `{"v":1,"data":{...}}`). */
export function recordBytes(entries: Iterable<[string, SessionEntry]>): number {
  let bytes = 20;
  for (const [key, entry] of entries)
    bytes += Buffer.byteLength(JSON.stringify(key)) + Buffer.byteLength(entry.json) + 2;
  return bytes;
}

export function encodeRecord(entries: Iterable<[string, SessionEntry]>): string {
  const parts: string[] = [];
  for (const [key, entry] of entries) parts.push(`${JSON.stringify(key)}:${entry.json}`);
  return `{"v":1,"data":{${parts.join(",")}}}`;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A stored record's entries, or undefined if it is not a record this version can read. */
export function decodeRecord(data: Uint8Array): Map<string, SessionEntry> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(data));
  } catch {
    return undefined;
  }
  const record = parsed as { v?: unknown; data?: unknown };
  if (typeof record !== "object" || record === null || record.v !== 1) return undefined;
  const body = record.data;
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const entries = new Map<string, SessionEntry>();
  for (const [key, value] of Object.entries(body)) {
    entries.set(key, { value: deepFreeze(value), json: JSON.stringify(value) });
  }
  return entries;
}
