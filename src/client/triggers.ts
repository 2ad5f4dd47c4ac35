import { pull, type Signals, setSignal } from "./signals.ts";

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

function parseSpec(raw: string): Spec | null {
  const text = raw.trim();
  if (!text.startsWith("{")) return text ? { action: text } : null;
  try {
    const spec: unknown = JSON.parse(text);
    if (typeof spec === "object" && spec !== null && typeof (spec as Spec).action === "string") return spec as Spec;
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
        for (const [name, value] of Object.entries(spec.set ?? {})) setSignal(name, value);
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
