// Playwright harness shared by every browser test: drives the system Chromium (never a downloaded
// one) and records everything that would mean the page is broken: console errors, uncaught
// exceptions and Content-Security-Policy violations.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { TestContext } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const chromiumAvailable = (): boolean => existsSync(CHROMIUM_PATH);

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ARGS });
}

let shared: Promise<Browser> | null = null;

/**
 * The browser shared by the tests of one file, or null when the test was skipped because Chromium
 * is missing. On CI a missing browser is a failure: a green run must mean the browser tests ran.
 * Pair with `after(closeBrowser)`.
 */
export async function browserOrSkip(t: TestContext): Promise<Browser | null> {
  if (!chromiumAvailable()) {
    const msg = `${CHROMIUM_PATH} not found: browser tests need Debian's chromium package (apt-get install chromium)`;
    if (process.env.CI === "true") assert.fail(`${msg}; refusing to skip browser tests on CI`);
    console.warn(`\n!!! SKIPPING BROWSER TEST "${t.name}": ${msg} !!!\n`);
    t.skip(msg);
    return null;
  }
  shared ??= launchBrowser();
  return shared;
}

export async function closeBrowser(): Promise<void> {
  const b = shared;
  shared = null;
  if (b) await (await b).close();
}

export interface Problems {
  consoleErrors: string[];
  pageErrors: string[];
  cspViolations: string[];
}

export interface ProbedPage {
  page: Page;
  context: BrowserContext;
  problems: Problems;
  /** Asserts no console error, page error or CSP violation happened so far. */
  assertClean(): void;
  close(): Promise<void>;
}

const CSP_BINDING = "__viaReportCsp";

/**
 * Opens a page in a fresh context with problem collectors attached before any page script runs,
 * then navigates to `url` (pass null to navigate yourself).
 * `allowConsole` filters console errors a test provokes on purpose (e.g. the browser's own
 * "Failed to load resource: 429" line when a test makes an action fail).
 */
export async function openPage(
  browser: Browser,
  url: string | null,
  options: { allowConsole?: RegExp[] } = {},
): Promise<ProbedPage> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems: Problems = { consoleErrors: [], pageErrors: [], cspViolations: [] };
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    if (options.allowConsole?.some((re) => re.test(text))) return;
    problems.consoleErrors.push(`${text} (${msg.location().url})`);
  });
  page.on("pageerror", (err) => problems.pageErrors.push(err.stack ?? String(err)));
  // exposeBinding goes through the debugger protocol, so reporting works on a strict-CSP page.
  await page.exposeBinding(CSP_BINDING, (_source, report: string) => {
    problems.cspViolations.push(report);
  });
  await page.addInitScript((binding: string) => {
    document.addEventListener("securitypolicyviolation", (e) => {
      const report = (window as unknown as Record<string, (s: string) => void>)[binding];
      report?.(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
    });
  }, CSP_BINDING);
  if (url !== null) await page.goto(url);
  return {
    page,
    context,
    problems,
    assertClean() {
      assert.deepEqual(problems.consoleErrors, [], "console errors");
      assert.deepEqual(problems.pageErrors, [], "page errors");
      assert.deepEqual(problems.cspViolations, [], "CSP violations");
    },
    close: () => context.close(),
  };
}
