// The fuzz run: the chat in-process on the embedded engine, a few legitimate sessions and tabs (their
// streams attached and kept attached, plus issued tab ids whose stream never attaches), then thousands
// of malformed requests with bounded concurrency, each judged against its expected statuses;
// afterwards the server must still be alive, healthy and able to carry a chat message, hold no more
// live tabs than the streams that attached legitimately and no more sessions than those tabs hold plus
// the session cookies it issued (refused and forged requests allocate nothing), and Object.prototype
// must have gained no key (the server runs in this process).
import { networkInterfaces, hostname as osHostname } from "node:os";
import { createChat } from "../../apps/chat/app.tsx";
import { removeDir, tempDir } from "../../harness/cleanup.ts";
import { Browser, httpRequest, type TabClient } from "../../harness/sse-client.ts";
import { createLogger } from "../../src/log.ts";
import { openPubSub } from "../../src/pubsub/index.ts";
import type { PubSub } from "../../src/pubsub/types.ts";
import { secretFromEngine } from "../../src/server/secret.ts";
import { TabIds } from "../../src/server/tab-id.ts";
import { type Case, type Fixture, type FuzzSession, type FuzzTab, generateCase } from "./cases/index.ts";
import { StreamKeeper } from "./keeper.ts";
import { type Outcome, sendHttp, sendRaw } from "./send.ts";

export interface FuzzOptions {
  seed: number;
  count: number;
  /** Requests in flight at once (default 32). */
  concurrency?: number;
  /** Per-request timeout in ms (default 5000). */
  timeoutMs?: number;
  /** Run only these case indexes (replay). */
  only?: number[];
  /** Legitimate sessions to create (default 12, two live and two spare tabs each). */
  sessions?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface Finding {
  index: number;
  category: string;
  name: string;
  problem: string;
  status: number;
  /** The start of the response body (or the error). */
  response: string;
  /** The request, abbreviated, as sent. */
  request: string;
  replay: string;
}

export interface FuzzReport {
  seed: number;
  count: number;
  ms: number;
  /** category → outcome label (status, "400 (node parser)", "closed (allowed)", …) → n. */
  counts: Record<string, Record<string, number>>;
  findings: Finding[];
  /** Checks after the run. */
  after: {
    serverListening: boolean;
    healthz: number;
    roundTrip: string;
    /**
     * `live`: app.stats().tabs after the run; `legit`: tabs whose streams attached legitimately (the
     * fixture's and the round trip's); `forged`: forged ids the server gave a live stream (each also a
     * finding); `keeperAttaches`: how often the fixture's streams attached (cases take them over).
     */
    tabs: { live: number; legit: number; forged: number; keeperAttaches: number };
    /**
     * `live`: app.stats().sessions after the run; `legit`: sessions a live tab legitimately holds (the
     * fixture's and the round trip's two); `issued`: pages answered 200 with a fresh session cookie
     * (loads without a cookie the server signed), each of which may keep at most its own session (the
     * chat keeps one per page load: see docs/RELIABILITY.md F9). Refused requests keep none, so `live`
     * must stay within `legit + issued`.
     */
    sessions: { live: number; legit: number; issued: number };
    /** Keys Object.prototype gained during the run (prototype pollution in the server process). */
    prototypeKeys: string[];
  };
}

interface Verdict {
  label: string;
  problem?: string;
}

function judge(c: Case, o: Outcome): Verdict {
  const head = c.req.kind === "http" ? c.req.method === "HEAD" : c.req.head === true;
  if (o.status === 0) {
    if (c.mayClose) return { label: "closed (allowed)" };
    return { label: `no response: ${o.error}`, problem: `connection ended without a response (${o.error})` };
  }
  if (o.status === -1)
    return { label: "garbage response", problem: "the server answered something that is not HTTP/1.x" };
  const label = String(o.status);
  if (o.status >= 500) return { label, problem: `server error ${o.status}` };
  // Node's own answer to a request its parser refused: bodyless, no Content-Type, before the app runs.
  const nodeAnswer =
    c.req.kind === "raw" && [400, 413].includes(o.status) && o.body === "" && !o.headers["content-type"];
  if (nodeAnswer && c.nodeParser) return { label: `${o.status} (node parser)` };
  // Node refuses request heads over its 16 KiB limit itself, whichever client sent them.
  if (o.status === 431 && o.body === "" && !o.headers["content-type"]) return { label: "431 (node parser)" };
  if (!c.expect.includes(o.status)) {
    const exp = c.expect.length > 0 ? c.expect.join("|") : "Node's parser 400/431";
    return { label, problem: `expected ${exp}, got ${o.status}` };
  }
  if (o.status >= 400 && !head && o.body.trim() === "") return { label, problem: `${o.status} without a reason body` };
  if (c.reason && o.status === c.reason.status && !head && !o.body.includes(c.reason.text))
    return { label, problem: `${o.status} for another reason than ${JSON.stringify(c.reason.text)}` };
  if (o.status === 429 && o.headers["retry-after"] === undefined) return { label, problem: "429 without Retry-After" };
  if (o.error === "truncated body") return { label, problem: "response body truncated (connection closed mid-body)" };
  for (const needle of c.mustNotContain ?? []) {
    if (o.body.includes(needle)) return { label, problem: `response leaks ${JSON.stringify(needle)}` };
  }
  if (c.sse && o.status === 200 && !String(o.headers["content-type"]).startsWith("text/event-stream"))
    return { label, problem: `stream 200 with Content-Type ${String(o.headers["content-type"])}` };
  if (o.status === 403 && setCookies(o).some((v) => v.startsWith("via_session=")))
    return { label, problem: "a refused request was issued a session cookie" };
  if (c.setCookie && o.status === 200) {
    const problem = cookieProblem(c, o);
    if (problem) return { label, problem };
  }
  if (c.sse && o.status === 200) {
    const reload = /^event: via-reload$/m.test(o.body);
    if (c.sse === "reload" && !reload) return { label, problem: "expected a via-reload event, got a live stream" };
    if (c.sse === "stream" && reload)
      return { label: `${label} via-reload`, problem: "expected a live stream, got via-reload" };
    return { label: reload ? `${label} via-reload` : label };
  }
  return { label };
}

/** The Set-Cookie headers of a response. */
function setCookies(o: Outcome): string[] {
  const raw = o.headers["set-cookie"];
  return raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
}

/** A page's Set-Cookie against Case.setCookie. */
function cookieProblem(c: Case, o: Outcome): string | undefined {
  const set = setCookies(o);
  if (c.setCookie === "none")
    return set.length > 0 ? `a session cookie was sent again: Set-Cookie ${set[0]}` : undefined;
  const session = set.find((v) => v.startsWith("via_session="));
  if (!session) return "no fresh session cookie for a request without a cookie the server signed";
  const m = /^via_session=([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{22};/.exec(session);
  if (!m) return `the fresh session cookie is not <id>.<mac>: ${session.slice(0, 80)}`;
  const sent = c.req.kind === "http" ? (c.req.headers.Cookie ?? "") : "";
  if (sent.includes(m[1]!)) return `the fresh session cookie names the id the request sent: ${session.slice(0, 80)}`;
  if (/;\s*secure/i.test(session)) return "a Secure session cookie over plain http";
  return undefined;
}

function describeRequest(c: Case): string {
  const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
  if (c.req.kind === "raw") return JSON.stringify(clip(c.req.bytes.toString("latin1"), 400));
  const { method, path, headers, body } = c.req;
  const hs = Object.entries(headers)
    .map(([k, v]) => `${k}: ${clip(v, 80)}`)
    .join(" | ");
  const b = body ? ` body=${JSON.stringify(clip(body.toString("latin1"), 200))}` : "";
  return `${method} ${clip(path, 200)} [${hs}]${b}`;
}

function fuzzTab(t: TabClient, path: string): FuzzTab {
  // The message list's "Load older" is the feed's `<list id>-older` (its button shows only while
  // older messages exist, so it is not always in the page).
  return { tab: t.tab, path, say: t.actionOf("send"), saveNick: t.actionOf("save-nick"), older: "messages-older" };
}

/** The app's default tabIdMaxAgeMs (7 days): expired ids are signed 8 days ago. */
const EXPIRED_AGE_MS = 8 * 24 * 3600_000;

/**
 * The legitimate sessions: per session two live tabs (a page each, then a kept-open stream, see
 * StreamKeeper), two spare tabs (a page each, never a stream), and two expired ids (signed with the
 * app's secret, which the chat keeps in its engine, with an issue time 8 days ago).
 */
async function makeFixture(
  base: string,
  port: number,
  sessions: number,
  pubsub: PubSub,
): Promise<{ fx: Fixture; keepers: StreamKeeper[] }> {
  const past = new TabIds(await secretFromEngine(pubsub), EXPIRED_AGE_MS, () => Date.now() - EXPIRED_AGE_MS);
  const out: FuzzSession[] = [];
  let version = "";
  let html = "";
  for (let i = 0; i < sessions; i++) {
    const browser = new Browser(base);
    const paths = ["/", i % 2 === 0 ? "/room/Rust" : "/room/Clojure"];
    const tabs: FuzzTab[] = [];
    const spares: FuzzTab[] = [];
    for (const list of [tabs, spares]) {
      for (const path of paths) {
        const t = await browser.load(path);
        version = t.version;
        html = t.html;
        list.push(fuzzTab(t, path));
      }
    }
    // The cookie is "via_session=<id>.<mac>"; tab ids are signed for the id.
    const sessionId = browser.cookie.slice(browser.cookie.indexOf("=") + 1).split(".")[0]!;
    out.push({ cookie: browser.cookie, tabs, spares, expired: [past.issue(sessionId), past.issue(sessionId)] });
  }
  const keepers = out.flatMap((s) => s.tabs.map((t) => new StreamKeeper(port, t.tab, t.path, version, s.cookie)));
  await Promise.all(keepers.map((k) => k.start()));
  const refused = keepers.flatMap((k) => k.problems);
  if (refused.length > 0) {
    for (const k of keepers) k.stop();
    throw new Error(`fuzz: the fixture's streams did not attach: ${refused.join("; ")}`);
  }
  const assets = [...new Set([...html.matchAll(/\/_via\/static\/[^"]+/g)].map((m) => m[0]))];
  if (assets.length === 0) throw new Error("fuzz: the page references no static assets");
  return { fx: { port, version, sessions: out, assets, hostNames: localHostNames() }, keepers };
}

/** This machine's host name and interface addresses, which the app answers to by default. */
function localHostNames(): string[] {
  const names = [osHostname().toLowerCase()];
  for (const list of Object.values(networkInterfaces())) {
    for (const iface of list ?? []) names.push(iface.address.split("%")[0]!.toLowerCase());
  }
  return [...new Set(names)];
}

/** A message sent through the action arrives as an appended element in this tab and another. */
async function roundTrip(base: string, seed: number, legit: Set<string>): Promise<string> {
  const alice = await new Browser(base).load("/room/Python");
  const bob = await new Browser(base).load("/room/Python");
  legit.add(alice.tab);
  legit.add(bob.tab);
  const sa = await alice.connect();
  const sb = await bob.connect();
  try {
    if (sa.status !== 200 || sb.status !== 200) return `stream status ${sa.status}/${sb.status}`;
    const text = `fuzz round trip ${seed} ${Date.now()}`;
    const res = await alice.action(alice.actionOf("send"), { ...alice.signals, statement: text });
    if (res.status !== 204) return `send action → ${res.status} ${res.body.trim()}`;
    const isAppend = (e: { event: string; data: Record<string, string> }) =>
      e.event === "datastar-patch-elements" && e.data.mode === "append" && (e.data.elements ?? "").includes(text);
    await sa.waitFor(isAppend, 5000);
    await bob.stream!.waitFor(isAppend, 5000);
    return "ok";
  } catch (err) {
    return `failed: ${(err as Error).message.slice(0, 300)}`;
  } finally {
    sa.close();
    sb.close();
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? (() => {});
  const concurrency = opts.concurrency ?? 32;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const started = performance.now();
  const dataDir = tempDir("via-fuzz-");
  const logger = createLogger("silent");
  const crashes: string[] = [];
  const onCrash = (err: unknown) => crashes.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.on("uncaughtException", onCrash);
  process.on("unhandledRejection", onCrash);
  // Object.prototype as it was: a key added during the run is prototype pollution in the server.
  const protoBefore = new Set(Reflect.ownKeys(Object.prototype).map(String));
  const pubsub = await openPubSub({ dataDir, logger });
  // Thousands of requests from one address: the per-address limits would answer most of them 429;
  // they have tests of their own (test/http/abuse.test.ts).
  const chat = await createChat({ pubsub, logger, app: { clientLimits: false } });
  let keepers: StreamKeeper[] = [];
  try {
    const { url, port, server } = await chat.app.listen(0, "127.0.0.1", { handleSignals: false });
    const fixture = await makeFixture(url, port, opts.sessions ?? 12, pubsub);
    const fx = fixture.fx;
    keepers = fixture.keepers;
    const legit = new Set(keepers.map((k) => k.tab));
    /** Forged tab ids (one character changed) that got a live stream: each should have been a 403. */
    const forgedAttached = new Map<string, boolean>();
    log(
      `fuzz: chat on ${url} (embedded engine, data in ${dataDir}); ${fx.sessions.length} sessions, ${legit.size} live tabs (streams attached), ${fx.sessions.length * 2} spare tabs (issued, never attached), ${fx.sessions.length * 2} expired tab ids`,
    );

    const indexes = opts.only ?? Array.from({ length: opts.count }, (_, i) => i);
    const counts: Record<string, Record<string, number>> = {};
    const findings: Finding[] = [];
    let next = 0;
    let done = 0;
    /** Pages answered 200 with a fresh session cookie. */
    let issued = 0;
    const step = Math.max(1000, Math.ceil(indexes.length / 5));
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= indexes.length) return;
        const c = generateCase(opts.seed, indexes[i]!, fx);
        const o =
          c.req.kind === "http" ? await sendHttp(port, c.req, timeoutMs) : await sendRaw(port, c.req, timeoutMs);
        const v = judge(c, o);
        // A page rendered for a request without a signed cookie may keep the session it issued.
        if (o.status === 200 && setCookies(o).some((h) => h.startsWith("via_session="))) issued++;
        if (c.forged && c.sse && o.status === 200 && !/^event: via-reload$/m.test(o.body))
          forgedAttached.set(c.forged.tab, c.forged.nonCanonical);
        const bucket = counts[c.category] ?? {};
        counts[c.category] = bucket;
        bucket[v.label] = (bucket[v.label] ?? 0) + 1;
        if (v.problem) {
          findings.push({
            index: c.index,
            category: c.category,
            name: c.name,
            problem: v.problem,
            status: o.status,
            response: o.status === 0 ? String(o.error) : o.body.slice(0, 200),
            request: describeRequest(c),
            replay: `npm run fuzz -- --seed ${opts.seed} --case ${c.index}`,
          });
        }
        if (++done % step === 0) log(`fuzz: ${done}/${indexes.length} sent, ${findings.length} findings`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));

    const healthz = (await httpRequest(`${url}/healthz`)).status;
    const trip = await roundTrip(url, opts.seed, legit);
    // Every request has its answer; a tab that started for one is in the registry by now.
    const stats = chat.app.stats();
    const live = stats.tabs;
    const prototypeKeys = Reflect.ownKeys(Object.prototype)
      .map(String)
      .filter((k) => !protoBefore.has(k));
    if (({} as Record<string, unknown>).polluted !== undefined && !prototypeKeys.includes("polluted"))
      prototypeKeys.push("polluted (inherited)");
    const after = {
      serverListening: server.listening,
      healthz,
      roundTrip: trip,
      tabs: {
        live,
        legit: legit.size,
        forged: forgedAttached.size,
        keeperAttaches: keepers.reduce((n, k) => n + k.attaches, 0),
      },
      sessions: { live: stats.sessions, legit: fx.sessions.length + 2, issued },
      prototypeKeys,
    };
    const post = (problem: string, name = "after the run"): void => {
      findings.push({
        index: -1,
        category: "after",
        name,
        problem,
        status: 0,
        response: "",
        request: "",
        replay: `npm run fuzz -- --seed ${opts.seed} --count ${opts.count}`,
      });
    };
    if (!server.listening) post("the server stopped listening");
    if (healthz !== 200) post(`/healthz → ${healthz}`);
    if (trip !== "ok") post(`chat round trip: ${trip}`);
    for (const k of keepers) for (const p of k.problems) post(p, "fixture stream");
    // The invariant: refused and forged requests allocate nothing. Tabs started by forged ids the
    // server accepted are findings of their own cases too; they are named apart so the rest stands out.
    if (forgedAttached.size > 0) {
      const nonCanonical = [...forgedAttached.values()].every(Boolean);
      post(
        `app.stats().tabs is ${live} after the run, ${legit.size} attached legitimately: ${forgedAttached.size} forged tab ids (one character changed) got a live stream, each a tab`,
        nonCanonical ? "forged ids started tabs (all non-canonical)" : "forged ids started tabs",
      );
    }
    if (live > legit.size + forgedAttached.size) {
      post(
        `app.stats().tabs is ${live} after the run, but only ${legit.size} streams attached legitimately` +
          (forgedAttached.size > 0 ? ` (and ${forgedAttached.size} forged ids got a stream)` : "") +
          ": refused or forged requests allocated tabs",
        "live tabs after the run",
      );
    }
    // A page load keeps no session (finding F9 in docs/RELIABILITY.md), so only the live tabs' sessions may be kept.
    if (stats.sessions > after.sessions.legit) {
      post(
        `app.stats().sessions is ${stats.sessions} after the run, but live tabs hold only ${after.sessions.legit} (${issued} pages issued a fresh session cookie): page loads, refused or forged requests kept sessions`,
        "sessions after the run",
      );
    }
    if (prototypeKeys.length > 0) {
      post(
        `Object.prototype gained ${prototypeKeys.map((k) => JSON.stringify(k)).join(", ")} during the run`,
        "prototype pollution",
      );
    }
    for (const crash of crashes) post(`uncaught exception or rejection in the server process: ${crash.slice(0, 500)}`);
    findings.sort((a, b) => a.index - b.index);
    return {
      seed: opts.seed,
      count: indexes.length,
      ms: Math.round(performance.now() - started),
      counts,
      findings,
      after,
    };
  } finally {
    for (const k of keepers) k.stop();
    await chat.close();
    await pubsub.close();
    process.off("uncaughtException", onCrash);
    process.off("unhandledRejection", onCrash);
    removeDir(dataDir);
  }
}

/** The report as text: counts per category and status, then each finding with its replay command. */
export function formatReport(r: FuzzReport): string {
  const lines: string[] = [];
  lines.push(`fuzz: seed ${r.seed}, ${r.count} requests in ${(r.ms / 1000).toFixed(1)} s`);
  for (const [cat, byLabel] of Object.entries(r.counts).sort()) {
    const total = Object.values(byLabel).reduce((a, b) => a + b, 0);
    const parts = Object.entries(byLabel)
      .sort((a, b) => b[1] - a[1])
      .map(([l, n]) => `${l}: ${n}`);
    lines.push(`  ${cat.padEnd(7)} ${String(total).padStart(6)}  ${parts.join(", ")}`);
  }
  lines.push(
    `after: server listening ${r.after.serverListening}, /healthz ${r.after.healthz}, chat round trip ${r.after.roundTrip}`,
  );
  const t = r.after.tabs;
  lines.push(
    `tabs: ${t.live} live after the run (app.stats().tabs), ${t.legit} attached legitimately, ${t.forged} by forged ids; fixture streams attached ${t.keeperAttaches} times`,
  );
  const ss = r.after.sessions;
  lines.push(
    `sessions: ${ss.live} kept after the run (app.stats().sessions), ${ss.legit} held by legitimate tabs, ${ss.issued} pages issued a fresh session cookie (none kept); Object.prototype: ${r.after.prototypeKeys.length === 0 ? "unchanged" : `gained ${r.after.prototypeKeys.join(", ")}`}`,
  );
  if (r.findings.length === 0) lines.push("findings: none");
  else {
    lines.push(`findings: ${r.findings.length}`);
    // Grouped first (a problem with a normalized case name), so one bug hit 40 times reads as one line.
    const groups = new Map<string, Finding[]>();
    for (const f of r.findings) {
      const key = `${f.category}: ${f.problem} (${f.name.split(" ").slice(0, 2).join(" ")} …)`;
      groups.set(key, [...(groups.get(key) ?? []), f]);
    }
    for (const [key, fs] of groups) lines.push(`  ${String(fs.length).padStart(4)}× ${key} — e.g. ${fs[0]!.replay}`);
    const shown = r.findings.slice(0, 50);
    for (const f of shown) {
      lines.push(`- [${f.category} #${f.index}] ${f.problem}: ${f.name}`);
      if (f.request) lines.push(`    request:  ${f.request}`);
      if (f.response) lines.push(`    response: ${JSON.stringify(f.response)}`);
      lines.push(`    replay:   ${f.replay}`);
    }
    if (r.findings.length > shown.length) lines.push(`  … and ${r.findings.length - shown.length} more`);
  }
  return lines.join("\n");
}
