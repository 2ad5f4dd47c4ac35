// Rendering JSX to HTML strings. hono/jsx escapes text and attribute values by default; raw HTML only
// enters through hono's explicit `raw()` (greppable). A plain string given where HTML is expected is
// treated as text and escaped, never as markup.
import { hash } from "node:crypto";
import { jsx } from "hono/jsx";
import type { JSX } from "hono/jsx/jsx-runtime";

export const VIEW_ID = "via-view";

export function escapeHtml(text: string): string {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

/** The inverse of escapeHtml, for tools and tests that read our pages (e.g. the via-boot meta). */
export function unescapeHtml(text: string): string {
  return text
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");
}

export function renderHtml(node: JSX.Element | string | null | undefined): string {
  if (node === null || node === undefined) return "";
  if (typeof node === "string") return escapeHtml(node);
  const out: unknown = node.toString();
  if (typeof out !== "string") {
    throw new Error("views must render synchronously: async components are not supported");
  }
  return out;
}

/**
 * The view's wrapper. `hash` identifies the view's markup (without streamed list items): the browser
 * reports it when its stream attaches, so an unchanged view is not sent again.
 */
export function viewHtml(inner: string, hash: string): string {
  return `<div id="${VIEW_ID}" data-via-hash="${hash}">${inner}</div>`;
}

/** A short digest of a view's markup (not a secret: only compared with what the browser reports). */
export function hashView(html: string): string {
  return hash("sha1", html, "base64url").slice(0, 16);
}

export function toastHtml(message: string, level: "info" | "error"): JSX.Element {
  return jsx(
    "div",
    { class: `via-toast via-toast-${level}`, role: level === "error" ? "alert" : "status" },
    message,
  ) as unknown as JSX.Element;
}

export interface DocumentParts {
  title: string;
  lang: string;
  boot: { tab: string; signals: Record<string, unknown>; v: string; w?: string; p?: number };
  runtimeUrl: string;
  stylesheets: readonly string[];
  view: string;
}

/** The page shell (docs/PROTOCOL.md §1): no inline script, so the CSP needs neither 'unsafe-inline' nor 'unsafe-eval'. */
export function documentHtml(p: DocumentParts): string {
  const links = p.stylesheets.map((href) => `<link rel="stylesheet" href="${escapeHtml(href)}">`).join("");
  return (
    `<!doctype html><html lang="${escapeHtml(p.lang)}" data-connection="connecting"><head>` +
    `<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(p.title)}</title>` +
    // An empty icon: without it every page load asks for /favicon.ico and logs a 404 in the console.
    `<link rel="icon" href="data:,">` +
    `<meta name="via-boot" content="${escapeHtml(JSON.stringify(p.boot))}">` +
    links +
    `<script type="module" src="${escapeHtml(p.runtimeUrl)}"></script>` +
    `</head><body>${p.view}` +
    `<div id="via-banner" role="status" hidden>Reconnecting…</div>` +
    `<div id="via-toasts" aria-live="polite"></div>` +
    `</body></html>`
  );
}
