// Action cases: headers broken one or two at a time around a body from bodies.ts, judged in the order
// app.ts serveAction checks them. Prototype-key cases reuse it with bodies of their own.
import type { Rng } from "../prng.ts";
import type { HttpReq } from "../send.ts";
import { type ActionTarget, type BodyCase, bodyCase } from "./bodies.ts";
import { flipId, headersWith, longString, pickTab, randomTabId } from "./builders.ts";
import { BROKEN_COOKIE_KINDS, type CookieKind, cookieHeader, hasSession } from "./cookies.ts";
import { expectForTarget } from "./expect.ts";
import { crossSite, REFUSED_SITES, refusedOrigin } from "./same-origin.ts";
import { malformedId, REFUSED_TAB_KINDS, type TabKind } from "./tab-ids.ts";
import type { Case, Fixture, FuzzTab } from "./types.ts";

interface ActionShape {
  viaRequest: string | undefined;
  secFetchSite: string | undefined;
  origin: string | undefined;
  tabKind: TabKind;
  cookieKind: CookieKind;
  contentType: string | undefined;
  actionKind: "valid" | "unknown" | "malformed";
  body: BodyCase;
}

const GOOD_CT = [
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  'application/json;charset="UTF-8"',
];
const BAD_CT = [
  "text/plain",
  "text/plain;charset=UTF-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=xyz",
  "application/json; charset=latin1",
  "application/jsonx",
  "application/json, text/plain",
  "application/json; boundary=1",
  "*/*",
  "",
  "json",
  "application/json".repeat(600),
];

/**
 * The statuses an action with this shape may get, in the order app.ts serveAction checks them (see
 * docs/PROTOCOL.md §3): origin headers, tab id shape, session, whose tab and whether it is live (a tab
 * of this session whose stream never attached: 410), content type, rate limit, body, action id.
 */
function expectAction(a: ActionShape, port: number): number[] {
  if (a.viaRequest !== "1") return [403];
  if (crossSite(a.secFetchSite, a.origin, port)) return [403];
  if (a.tabKind === "malformed" || a.tabKind === "missing") return [400];
  // No cookie the server signed: refused before any tab is looked at.
  if (!hasSession(a.cookieKind)) return [403];
  if (a.tabKind !== "own" && a.tabKind !== "spare" && a.tabKind !== "expired") return [403];
  // Issued to this session but not live: an expired id too (actions never start a context).
  if (a.tabKind === "spare" || a.tabKind === "expired") return [410];
  if (a.contentType === undefined || !GOOD_CT.includes(a.contentType)) return [415];
  const v = a.body.verdict;
  let final: number[];
  if (v === "413") final = [413];
  else if (v === "decode400") final = [400];
  else if (a.actionKind !== "valid") final = [404];
  else if (v === "type400") final = [400];
  else if (v === "okOrDecode400") final = [204, 400];
  else final = [204];
  return [...final, 429];
}

/**
 * An action's headers and body. `only`: a body generator whose bodies are the point of the case (the
 * prototype-key bodies): valid headers, a live tab and a real action id, so the body reaches the decoder.
 */
function actionShape(rng: Rng, port: number, only?: (rng: Rng) => BodyCase): ActionShape {
  // Most cases get valid headers so the body is exercised; the rest break one or more headers.
  const breakHeaders = !only && rng.chance(0.45);
  const shape: ActionShape = {
    viaRequest: "1",
    secFetchSite: rng.pick([undefined, "same-origin"]),
    origin: rng.pick([undefined, `http://127.0.0.1:${port}`]),
    // Now and then a tab whose stream never attached: 410 once the headers pass.
    tabKind: !only && rng.chance(0.06) ? "spare" : "own",
    cookieKind: "own",
    contentType: rng.pick(GOOD_CT),
    actionKind: only || rng.chance(0.9) ? "valid" : rng.pick(["unknown", "malformed"]),
    body: (only ?? bodyCase)(rng),
  };
  if (breakHeaders) {
    const n = 1 + rng.int(2);
    for (let i = 0; i < n; i++) {
      switch (rng.int(7)) {
        case 0:
          shape.viaRequest = rng.pick([undefined, "0", "true", "", "1, 1", "1 1", "01", "2", "yes"]);
          break;
        case 1:
          shape.secFetchSite = rng.pick(REFUSED_SITES);
          break;
        case 2:
          shape.origin = refusedOrigin(rng, port);
          break;
        case 3:
          shape.tabKind = rng.pick(REFUSED_TAB_KINDS);
          break;
        case 4:
          shape.cookieKind = rng.pick(BROKEN_COOKIE_KINDS);
          break;
        case 5:
          shape.contentType = rng.pick([undefined, ...BAD_CT]);
          break;
        default:
          shape.actionKind = rng.pick(["unknown", "malformed"]);
      }
    }
  }
  return shape;
}

function actionIdFor(shape: ActionShape, tab: FuzzTab, rng: Rng): string {
  if (shape.actionKind === "valid") {
    const target =
      shape.body.action ?? rng.pick<ActionTarget>(["say", "say", "saveNick", "saveNick", "saveNick", "older"]);
    return target === "say" ? tab.say : target === "older" ? tab.older : tab.saveNick;
  }
  if (shape.actionKind === "unknown") return rng.pick(["a999999", "a0", "a99", "a1000000", "b1"]);
  return rng.pick([
    "",
    "..",
    "..%2F..%2Fhealthz",
    "%00",
    "a1%00",
    "a1/",
    "*",
    ">",
    "a-1",
    "A1",
    longString(rng, 8000),
    "a%ZZ",
  ]);
}

function actionHeaders(
  shape: ActionShape,
  fx: Fixture,
  rng: Rng,
): { headers: Record<string, string>; tab: FuzzTab; kindName: string; forged?: Case["forged"] } {
  const { session, tab: live, other } = pickTab(rng, fx);
  // A spare tab's action ids are the live tab's (same page, same declarations).
  const tab = shape.tabKind === "spare" ? rng.pick(session.spares) : live;
  let tabId: string | undefined;
  let kindName: string = shape.tabKind;
  let forged: Case["forged"];
  if (shape.tabKind === "own" || shape.tabKind === "spare") tabId = tab.tab;
  else if (shape.tabKind === "other") tabId = rng.pick(other.tabs).tab;
  else if (shape.tabKind === "otherSpare") tabId = rng.pick(other.spares).tab;
  else if (shape.tabKind === "expired") tabId = rng.pick(session.expired);
  else if (shape.tabKind === "random") tabId = randomTabId(rng);
  else if (shape.tabKind === "flip") {
    const fromSpare = rng.chance(0.5);
    const f = flipId(rng, fromSpare ? rng.pick(session.spares).tab : tab.tab);
    tabId = f.id;
    forged = { tab: f.id, nonCanonical: f.nonCanonical };
    kindName = `flip(${fromSpare ? "spare" : "live"} id, ${f.where}${f.nonCanonical ? ", non-canonical" : ""})`;
  } else if (shape.tabKind === "malformed") tabId = malformedId(rng, tab.tab);
  const headers = headersWith(
    {},
    {
      "Via-Request": shape.viaRequest,
      "Sec-Fetch-Site": shape.secFetchSite,
      Origin: shape.origin,
      "Via-Tab": tabId,
      Cookie: cookieHeader(shape.cookieKind, session.cookie, other.cookie, rng),
      "Content-Type": shape.contentType,
    },
  );
  return { headers, tab, kindName, ...(forged ? { forged } : {}) };
}

export function actionCase(index: number, rng: Rng, fx: Fixture, only?: (rng: Rng) => BodyCase): Case {
  const shape = actionShape(rng, fx.port, only);
  const { headers, tab, kindName, forged } = actionHeaders(shape, fx, rng);
  const id = actionIdFor(shape, tab, rng);
  const b = shape.body;
  if (b.chunked) headers["Transfer-Encoding"] = "chunked";
  else headers["Content-Length"] = String(b.body.length);
  const req: HttpReq = { kind: "http", method: "POST", path: `/_via/action/${id}`, headers, body: b.body };
  // An id containing "/.." may be normalized out of the action prefix by URL parsing.
  const target = new URL(req.path, "http://localhost").pathname;
  const expect = target.startsWith("/_via/action/")
    ? expectAction(shape, fx.port)
    : expectForTarget("POST", req.path, fx);
  const hdr = [
    shape.viaRequest !== "1" ? `via-request=${JSON.stringify(shape.viaRequest)}` : "",
    shape.secFetchSite ? `sec-fetch-site=${shape.secFetchSite}` : "",
    shape.origin ? `origin=${shape.origin.slice(0, 40)}` : "",
    `tab=${kindName}`,
    `cookie=${shape.cookieKind}`,
    `ct=${JSON.stringify(shape.contentType?.slice(0, 40))}`,
    `action=${shape.actionKind}`,
  ]
    .filter(Boolean)
    .join(" ");
  return {
    index,
    category: only ? "proto" : "action",
    name: `POST action ${hdr} body=${b.name}`,
    req,
    expect,
    ...(forged ? { forged } : {}),
  };
}
