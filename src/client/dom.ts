// The page template ships these containers, but a hand-written or partially patched page may not:
// create them on demand so a toast or banner is never silently dropped.
export function ensure(id: string, init: (el: HTMLElement) => void): HTMLElement {
  let el = document.getElementById(id);
  if (!el) {
    el = document.createElement("div");
    el.id = id;
    init(el);
    document.body.append(el);
  }
  return el;
}
