// The chat's command line: one declaration per setting gives the help, the parser and the values.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { HELP, OptionError, readOptions } from "../../apps/chat/options.ts";

function options(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const o = readOptions(argv, env);
  assert.notEqual(o, "help");
  return o as Exclude<typeof o, "help">;
}

test("chat options default to the embedded engine on 127.0.0.1:7331 with the five rooms", () => {
  const o = options([]);
  assert.equal(o.port, 7331);
  assert.equal(o.host, "127.0.0.1");
  assert.equal(o.dataDir, resolve("./data"));
  assert.deepEqual(o.natsUrls, []);
  assert.equal(o.replicas, 1);
  assert.deepEqual(o.rooms, ["Go", "Rust", "Python", "JavaScript", "Clojure"]);
  assert.equal(o.sendRate, 1);
  assert.equal(o.tls, undefined);
  assert.deepEqual(o.app, { trustProxy: false, metrics: { path: "/metrics" } });
});

test("chat options take a flag over its environment variable, and the variable over the default", () => {
  assert.equal(options([], { PORT: "8080" }).port, 8080);
  assert.equal(options(["--port", "9090"], { PORT: "8080" }).port, 9090);
  assert.deepEqual(options([], { NATS_URL: "nats://a:4222, nats://b:4222" }).natsUrls, [
    "nats://a:4222",
    "nats://b:4222",
  ]);
  assert.equal(options(["--trust-proxy"]).app.trustProxy, true);
  assert.equal(options([], { TRUST_PROXY: "1" }).app.trustProxy, true);
  assert.equal(options([], { CLIENT_LIMITS: "off" }).app.clientLimits, false);
  assert.deepEqual(options(["--metrics-port", "9100"], { HOST: "0.0.0.0" }).app.metrics, {
    path: "/metrics",
    port: 9100,
    host: "0.0.0.0",
  });
  assert.equal(options(["--metrics", "off"]).app.metrics, false);
  assert.equal(options(["--allowed-hosts", "any"]).app.allowedHosts, "any");
  assert.deepEqual(options(["--allowed-hosts", "a.example,.b.example"]).app.allowedHosts, ["a.example", ".b.example"]);
});

test("chat options refuse a bad value or an unknown flag with the reason", () => {
  const refusals: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
    [["--port", "70000"], {}, /invalid port: 70000/],
    [[], { PORT: "x" }, /invalid port: x/],
    [["--replicas", "0"], {}, /invalid replicas: 0 \(an integer 1-5\)/],
    [["--send-rate", "11"], {}, /invalid send rate: 11 \(an integer 1-10\)/],
    [["--client-limits", "maybe"], {}, /invalid client limits: maybe \(on or off\)/],
    [["--metrics", "metrics"], {}, /invalid metrics path: metrics \(a path or off\)/],
    [["--rooms", ""], {}, /room/i],
    [["--tls-key", "key.pem"], {}, /--tls-cert and --tls-key go together/],
    [["--colour"], {}, /Unknown option '--colour'/],
  ];
  for (const [argv, env, reason] of refusals) {
    assert.throws(
      () => readOptions(argv, env),
      (err: unknown) => err instanceof OptionError && reason.test(err.message),
    );
  }
});

test("chat --help lists every flag with its environment variable and default", () => {
  assert.equal(readOptions(["--help"], {}), "help");
  for (const [flag, env] of [
    ["--port <n>", "PORT, default 7331"],
    ["--host <h>", "HOST, default 127.0.0.1"],
    ["--data-dir <dir>", "DATA_DIR, default ./data"],
    ["--nats <urls>", "NATS_URL"],
    ["--replicas <n>", "NATS_REPLICAS, default 1"],
    ["--rooms <names>", "CHAT_ROOMS, default Go,Rust,Python,JavaScript,Clojure"],
    ["--send-rate <n>", "CHAT_SEND_RATE, default 1"],
    ["--allowed-hosts <names>", "ALLOWED_HOSTS"],
    ["--trust-proxy", "TRUST_PROXY"],
    ["--client-limits <on|off>", "CLIENT_LIMITS, default on"],
    ["--metrics <path|off>", "METRICS, default /metrics"],
    ["--metrics-port <n>", "METRICS_PORT"],
    ["--metrics-host <h>", "METRICS_HOST"],
    ["--tls-cert <file>", "TLS_CERT"],
    ["--tls-key <file>", "TLS_KEY"],
  ]) {
    assert.ok(HELP.includes(`  ${flag}`), `help names ${flag}`);
    assert.ok(HELP.replace(/\s+/g, " ").includes(`env ${env}`), `help gives env ${env}`);
  }
});
