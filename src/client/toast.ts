import { ensure } from "./dom.ts";

const MAX_VISIBLE = 5;
const LIFETIME_MS = 6000;

export function toast(message: string): void {
  const box = ensure("via-toasts", (el) => el.setAttribute("aria-live", "polite"));
  const item = document.createElement("div");
  // Every toast the runtime makes reports a failure (a refused action, no connection).
  item.className = "via-toast via-toast-error";
  item.setAttribute("role", "alert");
  item.textContent = message;
  item.addEventListener("click", () => item.remove());
  box.append(item);
  setTimeout(() => item.remove(), LIFETIME_MS);
  // A burst of failures (e.g. rate limiting) must not bury the page under toasts.
  while (box.childElementCount > MAX_VISIBLE) box.firstElementChild?.remove();
}
