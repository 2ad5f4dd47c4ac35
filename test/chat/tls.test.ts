// The chat CLI over TLS: --tls-cert/--tls-key (or TLS_CERT/TLS_KEY) serve HTTPS, HTTP/2 for browsers
// and HTTP/1.1 for the rest, on the chat's one port.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:http2";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { fileURLToPath } from "node:url";
import { startChatProcess } from "../../harness/chat-process.ts";
import { certOrSkip } from "../../harness/tls.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Runs the chat CLI with `args` to its exit (for --help and refused flags: it exits before serving). */
function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const clean = { ...process.env, ...env };
  for (const name of ["TLS_CERT", "TLS_KEY"]) if (!(name in env)) delete clean[name];
  return spawnSync(process.execPath, ["--import", "tsx", "apps/chat/main.ts", ...args], {
    cwd: ROOT,
    env: clean,
    encoding: "utf8",
    timeout: 30_000,
  });
}

function h2Get(url: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(url, { rejectUnauthorized: false });
    session.on("error", reject);
    const stream = session.request({ ":path": path });
    let status = 0;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.on("data", (d: string) => {
      body += d;
    });
    stream.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    stream.on("error", reject);
    stream.end();
  });
}

function h1Get(url: string): Promise<{ status: number; version: string }> {
  return new Promise((resolve, reject) => {
    request(url, { rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, version: res.httpVersion }));
    })
      .on("error", reject)
      .end();
  });
}

test("chat --help documents --tls-cert and --tls-key", () => {
  const res = cli(["--help"]);
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /--tls-cert <file>/);
  assert.match(res.stdout, /--tls-key <file>/);
  assert.match(res.stdout, /env TLS_CERT/);
  assert.match(res.stdout, /env TLS_KEY/);
});

test("the chat refuses a certificate without its key, and files it cannot read", (t) => {
  const cert = certOrSkip(t);
  if (!cert) return;
  const alone = cli(["--tls-cert", cert.certFile]);
  assert.equal(alone.status, 2);
  assert.match(alone.stderr, /--tls-cert and --tls-key go together/);
  const envAlone = cli([], { TLS_KEY: cert.keyFile });
  assert.equal(envAlone.status, 2);
  assert.match(envAlone.stderr, /--tls-cert and --tls-key go together/);
  const missing = cli(["--tls-cert", cert.certFile, "--tls-key", join(tmpdir(), "no-such-key.pem")]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read the TLS certificate or key: .*no-such-key\.pem/);
});

test("TLS_CERT/TLS_KEY: the chat serves HTTPS, pages and health over HTTP/2, and HTTP/1.1 too", async (t: TestContext) => {
  const cert = certOrSkip(t);
  if (!cert) return;
  const dir = mkdtempSync(join(tmpdir(), "via-chat-tls-"));
  const proc = await startChatProcess({ dataDir: dir, env: { TLS_CERT: cert.certFile, TLS_KEY: cert.keyFile } });
  t.after(async () => {
    await proc.kill9();
    rmSync(dir, { recursive: true, force: true });
  });
  assert.match(proc.url, /^https:\/\/127\.0\.0\.1:\d+$/, "the start-up line names an https URL");
  const health = await h2Get(proc.url, "/healthz");
  assert.equal(health.status, 200);
  const page = await h2Get(proc.url, "/room/Go");
  assert.equal(page.status, 200);
  assert.match(page.body, /via-boot/);
  const metrics = await h2Get(proc.url, "/metrics");
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /via_tabs/);
  const h1 = await h1Get(`${proc.url}/healthz`);
  assert.deepEqual(h1, { status: 200, version: "1.1" });
  assert.equal(await proc.stop(), 0, `a clean shutdown:\n${proc.output()}`);
});
