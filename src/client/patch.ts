import { Idiomorph } from "idiomorph";
import type { Fields } from "./connection.ts";
import { insertIntoList, isList, morphListAttributes } from "./lists.ts";

type Mode = "outer" | "inner" | "replace" | "prepend" | "append" | "before" | "after" | "remove";

// ignoreActiveValue keeps what the user is typing; morphing (rather than replacing) keeps
// element identity, so caret, focus and scroll positions survive. A streamed list met inside a
// morphed element keeps its items: only its attributes follow the new markup.
const MORPH = {
  ignoreActiveValue: true,
  restoreFocus: true,
  callbacks: {
    beforeNodeMorphed(old: Node, fresh: Node): boolean {
      if (!isList(old) || !isList(fresh)) return true;
      morphListAttributes(old, fresh);
      return false;
    },
  },
} as const;

const morphOuter = (old: Element, fresh: Element) => Idiomorph.morph(old, fresh, { ...MORPH, morphStyle: "outerHTML" });

// A Map, so a namespace the server names ("__proto__", "constructor") finds no inherited wrapper.
const WRAPPERS = new Map([
  ["svg", "svg"],
  ["mathml", "math"],
]);

/** Parses inertly (a template runs and loads nothing); svg/mathml content gets its parent context. */
function fragment(html: string, namespace = ""): DocumentFragment {
  const t = document.createElement("template");
  const wrapper = WRAPPERS.get(namespace);
  if (!wrapper) {
    t.innerHTML = html;
    return t.content;
  }
  t.innerHTML = `<${wrapper}>${html}</${wrapper}>`;
  const out = document.createDocumentFragment();
  out.append(...(t.content.firstElementChild?.childNodes ?? []));
  return out;
}

function apply(mode: Mode, target: Element, content: Node): void {
  switch (mode) {
    case "outer":
      Idiomorph.morph(target, content, { ...MORPH, morphStyle: "outerHTML" });
      return;
    case "inner":
      Idiomorph.morph(target, content, { ...MORPH, morphStyle: "innerHTML" });
      return;
    case "replace":
      target.replaceWith(content);
      return;
    case "prepend":
    case "append":
      if (isList(target) && content instanceof DocumentFragment) insertIntoList(target, content, mode, morphOuter);
      else target[mode](content);
      return;
    case "before":
    case "after":
      target[mode](content);
      return;
    case "remove":
      target.remove();
      return;
    default:
      console.warn("via: unknown patch mode", mode);
  }
}

function patch(mode: Mode, selector: string | undefined, content: DocumentFragment): void {
  if (selector) {
    if (mode === "remove") {
      for (const el of document.querySelectorAll(selector)) el.remove();
      return;
    }
    const target = document.querySelector(selector);
    if (target) apply(mode, target, content);
    else console.warn("via: patch target not found", selector);
    return;
  }
  // Without a selector each top-level element targets the element with its id.
  for (const el of Array.from(content.children)) {
    const target = el.id ? document.getElementById(el.id) : null;
    if (target) apply(mode, target, el);
    else console.warn("via: patch target not found", el.id ? `#${el.id}` : el.tagName);
  }
}

/** Applies the patch; returns a promise only when a view transition defers it. */
export function patchElements(fields: Fields, done: () => void): Promise<void> | undefined {
  const run = () => {
    const content = fragment(fields.get("elements") ?? "", fields.get("namespace"));
    patch((fields.get("mode") || "outer") as Mode, fields.get("selector") || undefined, content);
    done();
  };
  if (fields.get("useViewTransition") === "true" && document.startViewTransition) {
    return document.startViewTransition(run).updateCallbackDone;
  }
  run();
}
