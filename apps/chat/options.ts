// The chat's command line: each setting is declared once (flag, environment variable, default, help,
// and how its text becomes a value), and the help text, the parser and the typed options all come
// from that declaration. A flag wins over its environment variable, which wins over the default.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type AppOptions, parseNatsUrls } from "via-ts";
import { DEFAULT_ROOMS, validateRooms } from "./rooms.ts";

/** A setting's text could not be used; the message says why, for the person who typed it. */
export class OptionError extends Error {}

interface Setting<T> {
  /** The value's name in the help (`--port <n>`); absent for a switch. */
  arg?: string;
  env: string;
  help: string;
  /** What an absent setting means, as the help shows it (omitted when `parse` handles absence). */
  shown?: string;
  /** The value from the flag's or the variable's text (undefined when neither is set). */
  parse(text: string | undefined): T;
}

function integer(name: string, min: number, max: number, fallback: number) {
  return (text: string | undefined): number => {
    if (text === undefined || text === "") return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new OptionError(`invalid ${name}: ${text} (an integer ${min}-${max})`);
    }
    return n;
  };
}

function port(name: string) {
  return (text: string | undefined): number | undefined =>
    text === undefined || text === "" ? undefined : integer(name, 0, 65535, 0)(text);
}

const text = (fallback: string) => (t: string | undefined) => (t === undefined || t === "" ? fallback : t);

const SETTINGS = {
  port: {
    arg: "n",
    env: "PORT",
    help: "port to listen on",
    shown: "7331",
    parse: (t: string | undefined) => port("port")(t) ?? 7331,
  },
  host: {
    arg: "h",
    env: "HOST",
    help: "interface to bind (0.0.0.0 for every interface)",
    shown: "127.0.0.1",
    parse: text("127.0.0.1"),
  },
  "data-dir": {
    arg: "dir",
    env: "DATA_DIR",
    help: "embedded engine's data directory",
    shown: "./data",
    parse: (t: string | undefined) => resolve(text("./data")(t)),
  },
  nats: {
    arg: "urls",
    env: "NATS_URL",
    help: "use NATS JetStream instead of the embedded engine; a comma-separated list of server URLs, e.g. nats://127.0.0.1:4222",
    parse: (t: string | undefined) => parseNatsUrls(t ?? ""),
  },
  replicas: {
    arg: "n",
    env: "NATS_REPLICAS",
    help: "stream replicas on a NATS cluster",
    shown: "1",
    parse: integer("replicas", 1, 5, 1),
  },
  rooms: {
    arg: "names",
    env: "CHAT_ROOMS",
    help: 'comma-separated room names, 1-200 of 1-40 characters; "/" opens the first',
    shown: DEFAULT_ROOMS.join(","),
    parse: (t: string | undefined) => {
      try {
        return validateRooms(t === undefined ? DEFAULT_ROOMS : t.split(","));
      } catch (err) {
        throw new OptionError((err as Error).message);
      }
    },
  },
  "send-rate": {
    arg: "n",
    env: "CHAT_SEND_RATE",
    help: "messages per second one browser session may send, 1-10, bursts of 5× that",
    shown: "1",
    parse: integer("send rate", 1, 10, 1),
  },
  "allowed-hosts": {
    arg: "names",
    env: "ALLOWED_HOSTS",
    help:
      'comma-separated host names the chat answers to, ".example.com" for a domain and its subdomains; ' +
      'other Host headers get a 403; "any" turns the check off',
    shown: "localhost and this machine's names and addresses",
    parse: (t: string | undefined): AppOptions["allowedHosts"] => {
      const list = (t ?? "").trim();
      return list === "" ? undefined : list === "any" ? "any" : list.split(",");
    },
  },
  "trust-proxy": {
    env: "TRUST_PROXY",
    help:
      "behind your own reverse proxy: take the client address from the last X-Forwarded-For entry and the " +
      "scheme from X-Forwarded-Proto (as a variable: TRUST_PROXY=1)",
    parse: (t: string | undefined) => t === "1" || t === "true",
  },
  "client-limits": {
    arg: "on|off",
    env: "CLIENT_LIMITS",
    help:
      "limits per client address (new sessions, page loads, actions, open streams, messages per room); " +
      "off only for load tests from one machine",
    shown: "on",
    parse: (t: string | undefined) => {
      const v = text("on")(t);
      if (v !== "on" && v !== "off") throw new OptionError(`invalid client limits: ${v} (on or off)`);
      return v === "on";
    },
  },
  metrics: {
    arg: "path|off",
    env: "METRICS",
    help: "where Prometheus metrics are served, e.g. /metrics; off turns them off; on the chat's port they answer any Host",
    shown: "/metrics",
    parse: (t: string | undefined) => {
      const v = text("/metrics")(t);
      if (v !== "off" && !v.startsWith("/")) throw new OptionError(`invalid metrics path: ${v} (a path or off)`);
      return v === "off" ? false : v;
    },
  },
  "metrics-port": {
    arg: "n",
    env: "METRICS_PORT",
    help: "serve the metrics on a port of their own instead of the chat's",
    shown: "the chat's port",
    parse: port("metrics port"),
  },
  "metrics-host": {
    arg: "h",
    env: "METRICS_HOST",
    help: "interface the metrics port binds",
    shown: "--host",
    parse: (t: string | undefined) => (t === "" ? undefined : t),
  },
  "tls-cert": {
    arg: "file",
    env: "TLS_CERT",
    help:
      "serve HTTPS with this certificate chain (PEM), together with --tls-key: HTTP/2 for browsers, whose tabs " +
      "then share one connection (over plain HTTP/1.1 a browser opens at most 6 connections per site, and each " +
      "open tab holds one, so a 7th tab never loads), and HTTP/1.1 for other clients",
    parse: (t: string | undefined) => (t === "" ? undefined : t),
  },
  "tls-key": {
    arg: "file",
    env: "TLS_KEY",
    help: "the certificate's private key, PEM",
    parse: (t: string | undefined) => (t === "" ? undefined : t),
  },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof SETTINGS;
type Parsed = { [K in keyof Settings]: ReturnType<Settings[K]["parse"]> };

const INTRO = `Usage: npm start -- [options]

The NATS chatroom on via-ts: rooms Go, Rust, Python, JavaScript and Clojure (or --rooms), history
kept in a durable stream (1,000 messages per room, 24 hours).`;

const OUTRO = `Logs are readable lines on a terminal and JSON lines otherwise; VIA_LOG_FORMAT=json|pretty chooses,
VIA_LOG_LEVEL sets the level (default info).

Without --nats the chat needs no other process: messages are stored in SQLite under the data
directory (one process per directory). With --nats several instances share rooms, history and
presence.`;

const WIDTH = 100;
const COLUMN = 22;

function wrap(words: string, indent: string): string {
  const lines: string[] = [];
  let line = "";
  for (const word of words.split(/\s+/)) {
    if (line && line.length + 1 + word.length > WIDTH - indent.length) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.join(`\n${indent}`);
}

function helpText(): string {
  const pad = " ".repeat(COLUMN);
  const rows = Object.entries(SETTINGS).map(([name, s]: [string, Setting<unknown>]) => {
    const label = `  --${name}${s.arg ? ` <${s.arg}>` : ""}`;
    const body = wrap(`${s.help} (env ${s.env}${s.shown ? `, default ${s.shown}` : ""})`, pad);
    return label.length < COLUMN ? `${label.padEnd(COLUMN)}${body}` : `${label}\n${pad}${body}`;
  });
  rows.push(`${"  --help".padEnd(COLUMN)}show this help`);
  return `${INTRO}\n\nOptions:\n${rows.join("\n")}\n\n${OUTRO}\n`;
}

export const HELP = helpText();

/** What the chat's main needs, from the command line and the environment. */
export interface ChatOptions {
  port: number;
  host: string;
  dataDir: string;
  natsUrls: string[];
  replicas: number;
  rooms: string[];
  sendRate: number;
  tls?: { cert: Buffer; key: Buffer };
  app: Pick<AppOptions, "trustProxy" | "allowedHosts" | "clientLimits" | "metrics">;
}

/** `"help"` for --help; else the options, or an OptionError (an unknown flag, a bad value). */
export function readOptions(argv: string[], env: NodeJS.ProcessEnv): ChatOptions | "help" {
  const spec: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const [name, s] of Object.entries(SETTINGS) as Array<[string, Setting<unknown>]>) {
    spec[name] = { type: s.arg ? "string" : "boolean" };
  }
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options: spec, strict: true }).values;
  } catch (err) {
    throw new OptionError((err as Error).message);
  }
  if (flags.help === true) return "help";
  const read = <K extends keyof Settings>(name: K): Parsed[K] => {
    const s: Setting<unknown> = SETTINGS[name];
    const flag = flags[name];
    const given = flag === true ? "1" : typeof flag === "string" ? flag : env[s.env];
    return s.parse(given) as Parsed[K];
  };
  const host = read("host");
  const metricsPath = read("metrics");
  const metricsPort = read("metrics-port");
  const certFile = read("tls-cert");
  const keyFile = read("tls-key");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new OptionError("--tls-cert and --tls-key go together (or neither)");
  }
  let tls: ChatOptions["tls"];
  if (certFile !== undefined && keyFile !== undefined) {
    try {
      tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
    } catch (err) {
      throw new OptionError(`cannot read the TLS certificate or key: ${(err as Error).message}`);
    }
  }
  const allowedHosts = read("allowed-hosts");
  return {
    port: read("port"),
    host,
    dataDir: read("data-dir"),
    natsUrls: read("nats"),
    replicas: read("replicas"),
    rooms: read("rooms"),
    sendRate: read("send-rate"),
    ...(tls ? { tls } : {}),
    app: {
      trustProxy: read("trust-proxy"),
      ...(allowedHosts ? { allowedHosts } : {}),
      ...(read("client-limits") ? {} : { clientLimits: false }),
      metrics:
        metricsPath === false
          ? false
          : {
              path: metricsPath,
              ...(metricsPort !== undefined ? { port: metricsPort, host: read("metrics-host") ?? host } : {}),
            },
    },
  };
}
