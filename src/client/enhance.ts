// Small declarative behaviours a server-rendered page cannot express in HTML alone:
// - `data-stick-bottom` on a scroll container: it follows new content while the reader is at the
//   bottom, and stays put once they scroll up to read older content (chat logs, feeds);
// - `<time datetime="…" data-local-time>`: shows the instant in the reader's own time zone.

const NEAR_BOTTOM_PX = 48;

/** Containers that are scrolled to (or near) their bottom right now; call before a patch. */
export function stuckToBottom(): Element[] {
  const out: Element[] = [];
  for (const el of document.querySelectorAll("[data-stick-bottom]")) {
    if (el.scrollHeight - el.scrollTop - el.clientHeight <= NEAR_BOTTOM_PX) out.push(el);
  }
  return out;
}

/** After a patch: keep the containers that were at the bottom there. */
export function followBottom(stuck: Element[]): void {
  for (const el of stuck) if (el.isConnected) el.scrollTop = el.scrollHeight;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function localizeTimes(root: ParentNode = document): void {
  for (const el of root.querySelectorAll<HTMLTimeElement>("time[data-local-time]")) {
    const iso = el.dateTime;
    if (el.dataset.localized === iso) continue;
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) continue;
    el.textContent = timeFormat.format(d);
    el.title = dateTimeFormat.format(d);
    el.dataset.localized = iso;
  }
}

export function initEnhancements(): void {
  localizeTimes();
  for (const el of document.querySelectorAll("[data-stick-bottom]")) el.scrollTop = el.scrollHeight;
}

const TOAST_LIFETIME_MS = 6000;

/** Notifications the server appends (`c.notify`) go away by themselves, or on a click. */
export function armToasts(): void {
  for (const el of document.querySelectorAll<HTMLElement>("#via-toasts > .via-toast:not([data-armed])")) {
    el.dataset.armed = "";
    el.addEventListener("click", () => el.remove());
    setTimeout(() => el.remove(), TOAST_LIFETIME_MS);
  }
}
