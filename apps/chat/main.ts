// `npm start`: the NATS chatroom, on the embedded engine by default or on NATS JetStream.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type AppOptions, createLogger, openPubSub, parseNatsUrls } from "via-ts";
import { createChat } from "./app.tsx";
import { DEFAULT_ROOMS, validateRooms } from "./rooms.ts";

const HELP = `Usage: npm start -- [options]

The NATS chatroom on via-ts: rooms Go, Rust, Python, JavaScript and Clojure (or --rooms), history
kept in a durable stream (1,000 messages per room, 24 hours).

Options:
  --port <n>          port to listen on (env PORT, default 7331)
  --host <h>          interface to bind (env HOST, default 127.0.0.1; 0.0.0.0 for every interface)
  --data-dir <dir>    embedded engine's data directory (env DATA_DIR, default ./data)
  --nats <urls>       use NATS JetStream instead of the embedded engine; a comma-separated list of
                      server URLs, e.g. nats://127.0.0.1:4222 (env NATS_URL)
  --replicas <n>      stream replicas on a NATS cluster (env NATS_REPLICAS, default 1)
  --rooms <names>     comma-separated room names, 1-200 of 1-40 characters; "/" opens the first
                      (env CHAT_ROOMS, default Go,Rust,Python,JavaScript,Clojure)
  --send-rate <n>     messages per second one browser session may send, 1-10, bursts of 5× that
                      (env CHAT_SEND_RATE, default 1)
  --allowed-hosts <names>
                      comma-separated host names the chat answers to, ".example.com" for a domain
                      and its subdomains; other Host headers get a 403 (env ALLOWED_HOSTS, default
                      localhost and this machine's names and addresses; "any" turns the check off)
  --trust-proxy       behind your own reverse proxy: take the client address from the last
                      X-Forwarded-For entry and the scheme from X-Forwarded-Proto (env TRUST_PROXY=1)
  --client-limits <on|off>
                      limits per client address (new sessions, page loads, actions, open streams,
                      messages per room); off only for load tests from one machine
                      (env CLIENT_LIMITS, default on)
  --metrics <path|off>
                      where Prometheus metrics are served, e.g. /metrics; off turns them off
                      (env METRICS, default /metrics); on the chat's port they answer any Host
  --metrics-port <n>  serve the metrics on a port of their own instead of the chat's
                      (env METRICS_PORT; default: the chat's port)
  --metrics-host <h>  interface the metrics port binds (env METRICS_HOST, default --host)
  --tls-cert <file>   serve HTTPS with this certificate chain (PEM), together with --tls-key: HTTP/2
                      for browsers, whose tabs then share one connection (over plain HTTP/1.1 a
                      browser opens at most 6 connections per site, and each open tab holds one, so
                      a 7th tab never loads), and HTTP/1.1 for other clients (env TLS_CERT)
  --tls-key <file>    the certificate's private key, PEM (env TLS_KEY)
  --help              show this help

Logs are readable lines on a terminal and JSON lines otherwise; VIA_LOG_FORMAT=json|pretty chooses,
VIA_LOG_LEVEL sets the level (default info).

Without --nats the chat needs no other process: messages are stored in SQLite under the data
directory (one process per directory). With --nats several instances share rooms, history and
presence.
`;

function fail(message: string): never {
  process.stderr.write(`${message}\n\n${HELP}`);
  process.exit(2);
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" },
      nats: { type: "string" },
      replicas: { type: "string" },
      rooms: { type: "string" },
      "send-rate": { type: "string" },
      "allowed-hosts": { type: "string" },
      "trust-proxy": { type: "boolean" },
      "client-limits": { type: "string" },
      metrics: { type: "string" },
      "metrics-port": { type: "string" },
      "metrics-host": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      help: { type: "boolean" },
    },
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

const port = Number(values.port ?? process.env.PORT ?? 7331);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid port: ${values.port ?? process.env.PORT}`);
const replicas = Number(values.replicas ?? process.env.NATS_REPLICAS ?? 1);
if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) fail(`invalid replicas: ${values.replicas}`);
const host = String(values.host ?? process.env.HOST ?? "127.0.0.1");
const natsUrls = parseNatsUrls(String(values.nats ?? process.env.NATS_URL ?? ""));
const dataDir = resolve(String(values["data-dir"] ?? process.env.DATA_DIR ?? "./data"));

const sendRate = Number(values["send-rate"] ?? process.env.CHAT_SEND_RATE ?? 1);
if (!Number.isInteger(sendRate) || sendRate < 1 || sendRate > 10) {
  fail(`invalid send rate: ${values["send-rate"] ?? process.env.CHAT_SEND_RATE} (an integer 1-10)`);
}
const allowedHostList = String(values["allowed-hosts"] ?? process.env.ALLOWED_HOSTS ?? "").trim();
const allowedHosts: AppOptions["allowedHosts"] =
  allowedHostList === "" ? undefined : allowedHostList === "any" ? "any" : allowedHostList.split(",");
const trustProxy = values["trust-proxy"] === true || ["1", "true"].includes(process.env.TRUST_PROXY ?? "");
const clientLimits = String(values["client-limits"] ?? process.env.CLIENT_LIMITS ?? "on");
if (clientLimits !== "on" && clientLimits !== "off") fail(`invalid client limits: ${clientLimits} (on or off)`);
const metricsPath = String(values.metrics ?? process.env.METRICS ?? "/metrics");
const metricsPortText = values["metrics-port"] ?? process.env.METRICS_PORT;
const metricsPort = metricsPortText === undefined || metricsPortText === "" ? undefined : Number(metricsPortText);
if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
  fail(`invalid metrics port: ${metricsPortText}`);
}
if (metricsPath !== "off" && !metricsPath.startsWith("/")) fail(`invalid metrics path: ${metricsPath} (a path or off)`);
const metrics: AppOptions["metrics"] =
  metricsPath === "off"
    ? false
    : {
        path: metricsPath,
        ...(metricsPort !== undefined
          ? { port: metricsPort, host: String(values["metrics-host"] ?? process.env.METRICS_HOST ?? host) }
          : {}),
      };
const tlsCertFile = String(values["tls-cert"] ?? process.env.TLS_CERT ?? "");
const tlsKeyFile = String(values["tls-key"] ?? process.env.TLS_KEY ?? "");
if ((tlsCertFile === "") !== (tlsKeyFile === "")) fail("--tls-cert and --tls-key go together (or neither)");
let tls: { cert: Buffer; key: Buffer } | undefined;
if (tlsCertFile !== "") {
  try {
    tls = { cert: readFileSync(tlsCertFile), key: readFileSync(tlsKeyFile) };
  } catch (err) {
    fail(`cannot read the TLS certificate or key: ${(err as Error).message}`);
  }
}
const roomList = values.rooms ?? process.env.CHAT_ROOMS;
let rooms: string[];
try {
  rooms = validateRooms(roomList === undefined ? DEFAULT_ROOMS : String(roomList).split(","));
} catch (err) {
  fail((err as Error).message);
}

const logger = createLogger();
let pubsub: Awaited<ReturnType<typeof openPubSub>>;
try {
  pubsub = await openPubSub(natsUrls.length > 0 ? { natsUrl: natsUrls, logger } : { dataDir, logger });
} catch (err) {
  logger.fatal({ err }, "could not open the pub/sub engine");
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exit(1);
}
const chat = await createChat({
  pubsub,
  logger,
  replicas,
  rooms,
  sendRate,
  app: {
    trustProxy,
    ...(allowedHosts ? { allowedHosts } : {}),
    ...(clientLimits === "off" ? { clientLimits: false } : {}),
    metrics,
  },
});
let url: string;
try {
  ({ url } = await chat.app.listen(port, host, { handleSignals: false, ...(tls ? { tls } : {}) }));
} catch (err) {
  // A port in use, or a certificate and key that do not parse or do not match.
  logger.fatal({ err }, "could not start the server");
  process.stderr.write(`error: ${(err as Error).message}\n`);
  await chat.close().catch(() => {});
  await pubsub.close().catch(() => {});
  process.exit(1);
}
const where = natsUrls.length > 0 ? `NATS JetStream at ${natsUrls.join(", ")}` : `embedded engine, data in ${dataDir}`;
const metricsOn = chat.app.metrics?.onAppPort ? { metrics: `${url}${chat.app.metrics.path}` } : {};
logger.info({ url, engine: pubsub.kind, ...metricsOn }, `NATS chatroom on ${url} (${where})`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 8_000);
    force.unref();
    chat
      .close()
      .then(() => pubsub.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  });
}
