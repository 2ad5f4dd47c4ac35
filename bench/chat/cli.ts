// bench:chat's command line: every flag declared once (harness/cli.ts), the definitions of what it
// measures (in the help, and printed at the start of every run), and the settings a run works with.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Command, defineCommand } from "../../harness/cli.ts";
import { natsServerBin } from "../../harness/nats-server.ts";
import { SCENARIO_IDS, type Scenario, type Settings, systemsOf, workersOf } from "./scenario.ts";
import { BIG_MESSAGE_BYTES, BIG_MESSAGE_CHARS, SYSTEMS } from "./shared.ts";

const INTRO = `Load on the chat app through its real protocol (page GET, event stream, "say" action), with
protocol-level clients in separate processes, next to a raw node:http SSE chat and a Socket.IO 4
chat under the same pattern, and our chat on the embedded engine and on a real nats-server.

Scenarios (each on a fresh server process per system):
  a       1,000 tabs in one room, one message every 50 ms (senders rotate over the tabs)
  b       5,000 tabs over 50 rooms, 200 messages/s in total spread over the rooms
  c       10,000 idle tabs over the same 50 rooms (memory only)
  ramp    10,000 tabs join ONE room (--ramp-tabs), each a new browser session: page GET, then its
          stream; until every tab shows the room's presence count at N (raw, embedded, nats)
  pages   500 page loads (--pages), each a new session, that never open their stream, then 200
          messages of ~${(BIG_MESSAGE_BYTES / 1000).toFixed(1)} KB (--page-messages; ${BIG_MESSAGE_CHARS.toLocaleString("en")} characters, the chat's limit) sent by one
          attached tab into the same room, at 10/s (the chat's per-session limit) (raw, embedded, nats)
  growth  1,000 tabs in one room (--growth-tabs), then 1,000 messages (--growth-messages) in a
          closed loop; server memory after forced GCs before and after the messages
  tabs    1,000 browsers (--browsers) × 5 tabs (--tabs-per-browser) in one room, each browser one
          session: its pages, then ONE shared stream (GET /_via/mux) with its tabs attached to it
          (POST /_via/attach), as the runtime's shared worker does ("shared"); and, on a fresh
          server in the same run, the same tabs on a stream of their own each ("own", the
          baseline); then messages at 20,000 deliveries/s (at most 20 msg/s: 4 msg/s at 5,000 tabs)
          open loop, as in a (embedded, nats)`;

/** What each figure means: in the help, and at the start of every run's output. */
export const DEFINITIONS = `Per scenario and system:
  latency       send stamp (in the text) → arrival of the message's stored copy in a recipient
                tab's stream (an append into #messages of an item with a position), over every
                recipient except the sender; open-loop phase at the scenario's rate, after 1 s of
                warm-up messages (sent and checked, not timed)
  deliveries/s  closed-loop phase ("saturation"): each client process keeps M messages in flight
                (--inflight; default 16,000 deliveries in flight in all, M = 16,000 / clients /
                tabs per room, within 8-128); a message is complete when every tab of that process
                in its room has it and its sender saw it stored (chat) or echoed (raw, Socket.IO);
                then that slot sends the next message, from the next tab in turn. Recipient
                deliveries that arrive inside the window ÷ the window (--seconds)
  bytes/deliv.  bytes read by every client socket (event streams with HTTP framing and keepalives,
                send responses, WebSocket frames) from the first measured send of the open loop
                until every message had arrived, ÷ the measured recipient deliveries
  CPU/1,000     server CPU time (/proc/<pid>/stat) over the open loop, until its last message
                arrived, ÷ its recipient deliveries × 1,000
  RSS/tab       (server VmRSS from /proc/<pid>/status with N tabs open − before the first tab) ÷ N,
                each read after a settle delay (2 s); also shown after forced full GCs
  ramp          from the first page GET until every tab's stream is open ("attached") and until
                every tab has been sent the room's presence count N ("presence N on every tab";
                the chat sends a room's presence changes once per interval, 100 ms or 1 ms per 10
                tabs if more, at most 2 s, and raw does the same); 50 tabs open at once per client
                process
  pages         server VmRSS growth (settled) from before the page loads (the sending tab open)
                to after the messages; also after forced full GCs at both ends
  growth        server VmRSS and V8 heap used after forced full GCs, with the tabs open, before and
                after the messages: growth in % of before
  connections   tabs: the server's TCP connections on its port in ESTABLISHED state
                (/proc/net/tcp), with every tab attached and the connections of the page loads
                and attach requests closed; and what the chat's /metrics says (via_streams_open:
                tabs with an open stream, a shared stream's lanes included; via_shared_streams,
                via_shared_stream_tabs, via_sessions)
  syscalls      tabs: the server's write system calls (syscw in /proc/<pid>/io) over the open
                loop, until its last message arrived, per 1,000 recipient deliveries
  loop delay    tabs: the server's event-loop delay p99 and max over the open loop (its /metrics,
                nodejs_eventloop_lag_*, whose histogram a scrape just before the loop resets)
  lost          a recipient that never got a message of its room, or a sender that never saw its
                message stored (or echoed); duplicate: one message text reaching a tab twice under
                different ids (a re-sent item with an id the tab holds is an upsert, not a new
                delivery); any loss or duplicate exits non-zero`;

// Each client process holds at most this many tabs: a socket per tab against a 20,000 fd limit.
const MAX_TABS_PER_WORKER = 8000;
/** The pages scenario's sender: the chat's per-session limit at --send-rate 10 (bursts of 50). */
const PAGE_SEND_RATE = 10;

const flags = {
  scenario: {
    type: "list",
    choices: SCENARIO_IDS,
    default: SCENARIO_IDS,
    all: true,
    arg: "list",
    help: "the scenarios to run",
  },
  systems: {
    type: "list",
    choices: SYSTEMS,
    default: SYSTEMS,
    arg: "list",
    help:
      "the systems to compare (ramp and pages leave socketio out: they need a page GET; tabs runs on embedded " +
      "and nats only: the shared stream is our protocol's)",
  },
  seconds: {
    type: "int",
    arg: "s",
    help: "length of the open-loop and of the closed-loop phase",
    default: 10,
    quick: 1,
    min: 1,
    max: 120,
  },
  inflight: {
    type: "optional-int",
    help:
      "closed loop: messages in flight per client process (default: 16,000 deliveries in flight in all, i.e. " +
      "16,000 / clients / tabs per room, 8-128)",
    min: 1,
    max: 512,
  },
  clients: {
    type: "int",
    help: "client processes (at least 2 for 10,000 tabs)",
    default: 2,
    quick: 1,
    min: 1,
    max: 8,
  },
  "ramp-tabs": {
    type: "int",
    help: "tabs of the ramp scenario",
    default: 10_000,
    quick: 200,
    min: 2,
    max: MAX_TABS_PER_WORKER * 8,
  },
  pages: {
    type: "int",
    help: "page loads without a stream in the pages scenario",
    default: 500,
    quick: 50,
    min: 1,
    max: 100_000,
  },
  "page-messages": {
    type: "int",
    help: "~6 KB messages in the pages scenario",
    default: 200,
    quick: 20,
    min: 1,
    max: 10_000,
  },
  "growth-tabs": {
    type: "int",
    help: "tabs of the growth scenario",
    default: 1000,
    quick: 100,
    min: 2,
    max: MAX_TABS_PER_WORKER * 8,
  },
  "growth-messages": {
    type: "int",
    help: "messages of the growth scenario",
    default: 1000,
    quick: 100,
    min: 1,
    max: 1_000_000,
  },
  browsers: {
    type: "int",
    help: "browsers (sessions) of the tabs scenario",
    default: 1000,
    quick: 50,
    min: 1,
    max: 20_000,
  },
  // At most the lanes one shared stream carries (src/server/mux.ts: MAX_LANES).
  "tabs-per-browser": {
    type: "int",
    help: "tabs each browser opens in the tabs scenario",
    default: 5,
    min: 1,
    max: 64,
  },
  profile: {
    type: "string",
    arg: "dir",
    help:
      "write a V8 CPU profile of every server process to <dir>: of the traffic phases (a, b, growth) or of the " +
      "ramp (c, ramp) or of the whole run (pages), as <scenario>-<system>.cpuprofile",
  },
  "heap-snapshots": {
    type: "string",
    arg: "dir",
    help:
      "write a heap snapshot of every server before the first tab (pages: with its one tab), with all tabs open " +
      "and (a, b, pages, growth) after the messages, each after forced GCs, to <dir>, as " +
      "<scenario>-<system>-<tabs | after-messages>.heapsnapshot",
  },
} as const;

export type ChatCommand = Command<typeof flags>;

export function chatCommand(): ChatCommand {
  return defineCommand({
    script: "bench:chat",
    file: "bench/chat.ts",
    title: "bench:chat — the chat under load, next to raw node:http SSE and Socket.IO 4",
    about: `${INTRO}\n\n${DEFINITIONS}`,
    quick:
      "smoke run: 100-400 tabs, 1 s phases, 1 client process, small new scenarios (ramp 200 tabs, 50 page " +
      "loads + 20 messages, growth 100 tabs × 100 messages, tabs 50 browsers × 5 tabs)",
    flags,
  });
}

/** Every scenario at the sizes the command line gives. */
function allScenarios(cli: ChatCommand): Scenario[] {
  const v = cli.values;
  const browsers = v.browsers;
  const perBrowser = v["tabs-per-browser"];
  return [
    ...(cli.quick
      ? [
          { id: "a", kind: "traffic", tabs: 100, rooms: 1, rate: 20 } as const,
          { id: "b", kind: "traffic", tabs: 200, rooms: 10, rate: 40 } as const,
          { id: "c", kind: "idle", tabs: 400, rooms: 10, rate: 0 } as const,
        ]
      : [
          { id: "a", kind: "traffic", tabs: 1000, rooms: 1, rate: 20 } as const,
          { id: "b", kind: "traffic", tabs: 5000, rooms: 50, rate: 200 } as const,
          { id: "c", kind: "idle", tabs: 10000, rooms: 50, rate: 0 } as const,
        ]),
    { id: "ramp", kind: "ramp", tabs: v["ramp-tabs"], rooms: 1, rate: 0 },
    {
      id: "pages",
      kind: "pages",
      tabs: 1,
      rooms: 1,
      rate: PAGE_SEND_RATE,
      pages: v.pages,
      messages: v["page-messages"],
    },
    { id: "growth", kind: "growth", tabs: v["growth-tabs"], rooms: 1, rate: 0, messages: v["growth-messages"] },
    {
      id: "tabs",
      kind: "tabs",
      tabs: browsers * perBrowser,
      rooms: 1,
      // 20,000 deliveries/s (scenario a's), at most 20 msg/s.
      rate: Math.min(20, Math.max(1, Math.round(20_000 / (browsers * perBrowser)))),
      browsers,
      tabsPerBrowser: perBrowser,
    },
  ];
}

function usage(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

/** The settings of this run; a combination the flags allow but the run cannot do exits with status 2. */
export function settingsOf(cli: ChatCommand): Settings {
  const v = cli.values;
  const quick = cli.quick;
  const settings: Settings = {
    quick,
    scenarios: allScenarios(cli).filter((s) => v.scenario.includes(s.id)),
    systems: v.systems,
    workers: v.clients,
    phaseMs: v.seconds * 1000,
    inflight: v.inflight,
    settleMs: quick ? 250 : 2000,
    gcPauseMs: quick ? 20 : 200,
    warmupMs: quick ? 250 : 1000,
    finishTimeoutMs: quick ? 5_000 : 15_000,
    watchdogMs: (quick ? 5 : 45) * 60_000,
    profileDir: v.profile ? resolve(v.profile) : undefined,
    snapshotDir: v["heap-snapshots"] ? resolve(v["heap-snapshots"]) : undefined,
  };
  for (const s of settings.scenarios) {
    if (Math.ceil(s.tabs / workersOf(settings, s)) > MAX_TABS_PER_WORKER) {
      usage(
        `scenario ${s.id}: ${s.tabs} tabs need at least ${Math.ceil(s.tabs / MAX_TABS_PER_WORKER)} client processes (--clients)`,
      );
    }
  }
  if (settings.scenarios.some((s) => systemsOf(settings, s).includes("nats")) && !existsSync(natsServerBin())) {
    usage(
      `nats-server not found at ${natsServerBin()} (apt-get install nats-server, or set NATS_SERVER_BIN); ` +
        "leave nats out of --systems to run without it",
    );
  }
  if (cli.jsonFile) mkdirSync(dirname(resolve(cli.jsonFile)), { recursive: true });
  if (settings.profileDir) mkdirSync(settings.profileDir, { recursive: true });
  if (settings.snapshotDir) mkdirSync(settings.snapshotDir, { recursive: true });
  return settings;
}
