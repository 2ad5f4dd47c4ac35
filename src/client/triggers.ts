import { isObject, parseJson, type Signals } from "./json.ts";
import { pull, setSignal } from "./signals.ts";

const EVENTS = ["click", "keydown", "input", "change", "submit"];

interface Spec {
  action: string;
  key?: string;
  debounce?: number;
  set?: Signals;
  prevent?: boolean;
  page?: string;
}

const timers = new WeakMap<Element, Record<string, number>>();

// Specs have no prototype, so an option the spec does not name is undefined even when another script
// has put one on Object.prototype.
function parseSpec(raw: string): Spec | null {
  const text = raw.trim();
  if (!text.startsWith("{")) return text ? Object.assign(Object.create(null), { action: text }) : null;
  try {
    const spec = parseJson(text);
    if (isObject(spec) && typeof spec.action === "string") return spec as unknown as Spec;
  } catch {}
  console.warn("via: bad trigger spec", raw);
  return null;
}

export function installTriggers(send: (action: string, page?: string) => void): void {
  for (const type of EVENTS) {
    document.addEventListener(type, (e) => {
      const target = e.target;
      if (!(target instanceof Element)) return;
      const el = target.closest(`[data-on-${type}]`);
      const spec = el && parseSpec(el.getAttribute(`data-on-${type}`) ?? "");
      if (!el || !spec) return;
      if (e instanceof KeyboardEvent) {
        // Enter that confirms an IME composition is not a submit.
        if ((spec.key && e.key !== spec.key) || e.isComposing) return;
        if (spec.key) e.preventDefault();
      }
      if (spec.prevent || type === "submit" || (type === "click" && target.closest("a[href]"))) e.preventDefault();
      const fire = () => {
        // A checkbox's click runs before its input/change events, so read the fresh value here.
        pull(target);
        // Only an object names signals: the entries of a string or an array would be "0", "1", ….
        if (isObject(spec.set)) for (const [name, value] of Object.entries(spec.set)) setSignal(name, value);
        send(spec.action, typeof spec.page === "string" ? spec.page : undefined);
      };
      const wait = spec.debounce ?? (type === "input" ? 300 : 0);
      if (wait <= 0) {
        fire();
        return;
      }
      const pending = timers.get(el) ?? {};
      clearTimeout(pending[type]);
      pending[type] = window.setTimeout(fire, wait);
      timers.set(el, pending);
    });
  }
}
