// The chat in a real browser page, as the browser tests use it: typing a message, waiting for a
// message to be stored, reading what the list shows. The DOM side of harness/chat-markup.ts (which
// reads the same markup as text): both follow apps/chat/view.tsx.
import type { Page } from "playwright-core";

/** A stored message item: not pending ("sending") and not refused ("failed"). */
const STORED_ITEM = "#messages > li.chat-message:not(.sending):not(.failed)";

/** Types `text` into the input, presses Enter and waits until the server took it (the input clears). */
export async function say(page: Page, text: string): Promise<void> {
  await page.fill("#statement", text);
  await page.press("#statement", "Enter");
  await page.waitForFunction(() => document.querySelector<HTMLInputElement>("#statement")?.value === "");
}

/** Waits until a stored message whose text is exactly `text` is on the page. */
export async function waitForMessage(page: Page, text: string, timeout?: number): Promise<void> {
  await page.waitForFunction(
    ([selector, expected]) =>
      [...document.querySelectorAll(selector)].some((li) => li.querySelector(".text")?.textContent === expected),
    [STORED_ITEM, text] as const,
    timeout === undefined ? {} : { timeout },
  );
}

/** What the page shows for each message, oldest first. */
export function shownMessages(page: Page): Promise<Array<{ author: string; text: string; classes: string[] }>> {
  return page.$$eval("#messages > li.chat-message", (lis) =>
    lis.map((li) => ({
      author: li.querySelector(".author")?.textContent ?? "",
      text: li.querySelector(".text")?.textContent ?? "",
      classes: [...li.classList],
    })),
  );
}
