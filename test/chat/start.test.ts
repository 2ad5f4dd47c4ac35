// `npm start` as a person runs it: it compiles the chat and runs the compiled JavaScript with plain
// node (no TypeScript loader), and the chat answers.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

test("npm start builds the chat and runs it as compiled JavaScript, without a TypeScript loader", {
  timeout: 120_000,
}, async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "via-start-"));
  const env: NodeJS.ProcessEnv = { ...process.env, VIA_LOG_LEVEL: "info" };
  for (const name of ["PORT", "NATS_URL", "DATA_DIR", "NODE_OPTIONS"]) delete env[name];
  const npm = spawn("npm", ["start", "--", "--port", "0", "--data-dir", dataDir], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  t.after(() => {
    try {
      process.kill(-npm.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    rmSync(dataDir, { recursive: true, force: true });
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = /NATS chatroom on (http:\/\/[^\s"]+)/.exec(output);
      if (m) resolve(m[1]!);
    };
    npm.stdout.on("data", onData);
    npm.stderr.on("data", onData);
    npm.once("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${output}`)));
  });
  const page = await fetch(`${url}/room/Go`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<ol id="messages" data-via-stream=""/);
  // The process that serves is node on dist/…/main.js, with no loader in its arguments.
  const pids = readFileSync(`/proc/${npm.pid}/task/${npm.pid}/children`, "utf8").trim().split(/\s+/);
  const commands = pids.flatMap((pid) => {
    try {
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
      return [pid, ...children].map((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" "));
    } catch {
      return [];
    }
  });
  const server = commands.find((c) => c.includes("dist/apps/chat/main.js"));
  assert.ok(server, `a node process runs dist/apps/chat/main.js: ${commands.join(" | ")}`);
  assert.doesNotMatch(server!, /tsx|--import|--loader/);
});
