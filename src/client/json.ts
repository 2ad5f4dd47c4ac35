// JSON from the server or the page (boot signals, signal patches, trigger specs) is data, never a path
// to a prototype: `__proto__`, `constructor` and `prototype` are dropped wherever it is read or merged,
// and every object it becomes has no prototype, so a missing key reads as undefined instead of whatever
// Object.prototype holds.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Signals = { [name: string]: Json };

const UNSAFE = new Set(["__proto__", "constructor", "prototype"]);

/** False for the keys that reach a prototype or a constructor through an ordinary object. */
export const safeKey = (key: string): boolean => !UNSAFE.has(key);

export const isObject = (v: unknown): v is Signals => typeof v === "object" && v !== null && !Array.isArray(v);

/** JSON.parse whose objects, at any depth, have no prototype and none of the unsafe keys. */
export function parseJson(text: string): unknown {
  // The reviver runs innermost first; returning undefined deletes the key from its object.
  return JSON.parse(text, (key, value) => {
    if (!safeKey(key)) return undefined;
    return isObject(value) ? Object.assign(Object.create(null), value) : value;
  });
}

/**
 * RFC 7386 merge patch into `target`; with onlyIfMissing, values already present are left alone.
 * Objects it creates have no prototype and unsafe keys are skipped, so a patch can only ever add
 * own data.
 */
export function mergePatch(target: Signals, patch: Signals, onlyIfMissing: boolean): Signals {
  for (const [key, value] of Object.entries(patch)) {
    if (!safeKey(key)) continue;
    const current = Object.hasOwn(target, key) ? target[key] : undefined;
    if (value === null) {
      if (!onlyIfMissing) delete target[key];
    } else if (isObject(value) && isObject(current)) {
      mergePatch(current, value, onlyIfMissing);
    } else if (!onlyIfMissing || current === undefined) {
      target[key] = isObject(value) ? mergePatch(Object.create(null), value, false) : value;
    }
  }
  return target;
}
