// bench:chat: preloaded into every server process (`--import=…`; for the chat CLI through
// NODE_OPTIONS), so the orchestrator can ask each server the same questions the same way. It listens
// on a Unix socket, `$VIA_BENCH_CONTROL_DIR/<pid>.sock`, and answers one JSON request per connection:
//   {"cmd":"gc","pauseMs":n}           4 forced full GCs n ms apart, then {rss, heapUsed, heapTotal, external}
//   {"cmd":"profile-start"}            start V8's CPU profiler
//   {"cmd":"profile-stop","file":path} stop it and write the .cpuprofile there
//   {"cmd":"heap-snapshot","file":path} write a V8 heap snapshot there
// Plain JavaScript: it loads before any TypeScript loader.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { createServer } from "node:net";
import { join } from "node:path";
import { setFlagsFromString, writeHeapSnapshot } from "node:v8";
import { runInNewContext } from "node:vm";

const dir = process.env.VIA_BENCH_CONTROL_DIR;
if (dir) {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc");
  let session;
  const post = (method) =>
    new Promise((resolve, reject) => session.post(method, (err, result) => (err ? reject(err) : resolve(result))));
  const commands = {
    async gc(req) {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setTimeout(r, req.pauseMs ?? 100));
      }
      gc();
      const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
      return { rss, heapUsed, heapTotal, external };
    },
    async "profile-start"() {
      session = new Session();
      session.connect();
      await post("Profiler.enable");
      await post("Profiler.start");
      return {};
    },
    async "heap-snapshot"(req) {
      return { file: writeHeapSnapshot(req.file) };
    },
    async "profile-stop"(req) {
      const { profile } = await post("Profiler.stop");
      writeFileSync(req.file, JSON.stringify(profile));
      session.disconnect();
      return { file: req.file };
    },
  };
  const server = createServer((sock) => {
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("data", (chunk) => {
      buf += chunk;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const req = JSON.parse(buf.slice(0, nl));
      const run = commands[req.cmd] ?? (() => Promise.reject(new Error(`unknown command ${req.cmd}`)));
      run(req).then(
        (result) => sock.end(`${JSON.stringify({ ok: true, result })}\n`),
        (err) => sock.end(`${JSON.stringify({ ok: false, error: String(err) })}\n`),
      );
    });
    sock.on("error", () => {});
  });
  server.listen(join(dir, `${process.pid}.sock`));
  server.unref();
}
