// Streamed lists (elements with `data-via-stream`, docs/PROTOCOL.md §2): their items belong to the
// browser. A re-render of the view keeps them; an inserted item whose id is already in the list
// replaces that item in place; positions (`data-via-pos`) tell the server where each list stands.

export const LIST_ATTR = "data-via-stream";

export function isList(node: Node): node is Element {
  return node instanceof Element && node.hasAttribute(LIST_ATTR);
}

/** Positions of a list's items (a server-given seq per item; items without one are skipped). */
function positions(list: Element): number[] {
  const out: number[] = [];
  for (const item of list.children) {
    const pos = Number(item.getAttribute("data-via-pos"));
    if (Number.isSafeInteger(pos) && pos > 0) out.push(pos);
  }
  return out;
}

/** The list's oldest position, sent as the cursor of its "Load older" action. */
export function oldestPosition(id: string): string | undefined {
  const list = document.getElementById(id);
  if (!list) return undefined;
  const all = positions(list);
  return all.length > 0 ? String(Math.min(...all)) : undefined;
}

/**
 * What the page's lists hold, for the event stream URL: `id:newest:count:more` per list, comma-separated.
 * The server resumes each list from its newest position.
 */
export function listReport(): string {
  const out: string[] = [];
  for (const list of document.querySelectorAll(`[${LIST_ATTR}]`)) {
    if (!list.id) continue;
    const all = positions(list);
    const newest = all.length > 0 ? Math.max(...all) : 0;
    out.push(`${list.id}:${newest}:${list.childElementCount}:${list.hasAttribute("data-via-more") ? 1 : 0}`);
  }
  return out.join(",");
}

/** Copies the attributes of a re-rendered list onto the one in the page, keeping its items. */
export function morphListAttributes(old: Element, fresh: Element): void {
  for (const attr of Array.from(old.attributes)) if (!fresh.hasAttribute(attr.name)) old.removeAttribute(attr.name);
  for (const attr of Array.from(fresh.attributes)) {
    if (old.getAttribute(attr.name) !== attr.value) old.setAttribute(attr.name, attr.value);
  }
}

/**
 * Inserts `content` into a list at its end or start. An item whose id is already in the list is
 * morphed in place by `replace` instead (a stored copy of an item the page shows as pending).
 */
export function insertIntoList(
  list: Element,
  content: DocumentFragment,
  at: "append" | "prepend",
  replace: (old: Element, fresh: Element) => void,
): void {
  const fresh = document.createDocumentFragment();
  for (const node of Array.from(content.childNodes)) {
    const existing = node instanceof Element && node.id ? document.getElementById(node.id) : null;
    if (existing && existing.parentElement === list) {
      // A position, once the item has one, stays: a later update without it (a state change the server
      // rendered for this tab alone) must not make the list forget where it stands.
      const pos = existing.getAttribute("data-via-pos");
      if (pos !== null && !(node as Element).hasAttribute("data-via-pos"))
        (node as Element).setAttribute("data-via-pos", pos);
      replace(existing, node as Element);
    } else fresh.append(node);
  }
  list[at](fresh);
}
