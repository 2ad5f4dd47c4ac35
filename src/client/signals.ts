import { type Json, mergePatch, type Signals, safeKey } from "./json.ts";

export type { Json, Signals };

// No prototype: a name the page reads (`data-text="toString"`) finds a signal or nothing, never an
// inherited property.
const store: Signals = Object.create(null);

// Copies so callers (the action body, the debug hook) can never mutate the store behind our back.
export const snapshot = (): Signals => structuredClone(store);

export function patchSignals(patch: Signals, onlyIfMissing: boolean): void {
  mergePatch(store, patch, onlyIfMissing);
  refresh(new Set(Object.keys(patch)), null);
}

export function setSignal(name: string, value: Json, skip: Element | null = null): void {
  if (!safeKey(name)) return;
  store[name] = value;
  refresh(new Set([name]), skip);
}

type Field = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;

const isField = (el: Element): el is Field =>
  el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement;

/** The element's value as a signal value; undefined means "no change" (an unchecked radio). */
function read(el: Field): Json | undefined {
  if (el instanceof HTMLInputElement) {
    if (el.type === "checkbox") return el.checked;
    if (el.type === "radio") return el.checked ? el.value : undefined;
    // An empty number field has no number: null rather than 0 or "", so the type stays honest.
    if (el.type === "number" || el.type === "range") return el.value === "" ? null : el.valueAsNumber;
  }
  if (el instanceof HTMLSelectElement && el.multiple) {
    return Array.from(el.selectedOptions, (o) => o.value);
  }
  return el.value;
}

function write(el: Element, value: Json | undefined): void {
  if (!isField(el)) return;
  if (el instanceof HTMLInputElement && (el.type === "checkbox" || el.type === "radio")) {
    el.checked = el.type === "radio" ? String(value) === el.value : !!value;
  } else if (el instanceof HTMLSelectElement && el.multiple) {
    const chosen = Array.isArray(value) ? value.map(String) : [];
    for (const o of el.options) o.selected = chosen.includes(o.value);
  } else {
    const text = value == null ? "" : String(value);
    // Only assign on change: rewriting an identical value would reset the caret.
    if (el.value !== text) el.value = text;
  }
}

/**
 * Pushes signal values into bound elements. names = null means every binding (after boot or a
 * patch); skip is the element the value came from, or the focused input after a patch.
 */
export function refresh(names: Set<string> | null, skip: Element | null): void {
  for (const el of document.querySelectorAll("[data-bind],[data-text]")) {
    const bind = el.getAttribute("data-bind");
    if (bind !== null && safeKey(bind) && (!names || names.has(bind)) && el !== skip) {
      // A bound element without a signal seeds it, so server-rendered values are not wiped.
      if (!(bind in store) && isField(el)) {
        const v = read(el);
        if (v !== undefined) store[bind] = v;
      } else write(el, store[bind]);
    }
    const text = el.getAttribute("data-text");
    if (text !== null && (!names || names.has(text))) {
      const v = store[text];
      const s = v == null ? "" : String(v);
      if (el.textContent !== s) el.textContent = s;
    }
  }
}

/** Copies a bound element's current value into its signal, updating every other binding. */
export function pull(el: Element): void {
  const name = el.getAttribute("data-bind");
  if (name === null || !isField(el)) return;
  const v = read(el);
  if (v !== undefined) setSignal(name, v, el);
}

export function initSignals(initial: Signals): void {
  mergePatch(store, initial, false);
  refresh(null, null);
  // Registered before the trigger listeners so an action fired by the same event sees the new value.
  for (const type of ["input", "change"]) {
    document.addEventListener(type, (e) => {
      if (e.target instanceof Element) pull(e.target);
    });
  }
}
