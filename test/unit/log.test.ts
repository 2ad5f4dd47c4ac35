import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { pino } from "pino";
import { prettyDestination } from "../../src/log.ts";

function collector(): { out: Writable; text: () => string } {
  let text = "";
  const out = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { out, text: () => text };
}

test("pretty logs are one readable line per event: time, level, message, then the fields", () => {
  const { out, text } = collector();
  const log = pino({ base: undefined }, prettyDestination(out, false));
  log.info({ url: "http://127.0.0.1:7331", engine: "embedded" }, "NATS chatroom on http://127.0.0.1:7331");
  assert.match(
    text(),
    /^\d\d:\d\d:\d\d\.\d{3} INFO {2}NATS chatroom on http:\/\/127\.0\.0\.1:7331 url=http:\/\/127\.0\.0\.1:7331 engine=embedded\n$/,
  );
});

test("pretty logs show an error's stack indented under its line, and color only when asked", () => {
  const plain = collector();
  pino({ base: undefined }, prettyDestination(plain.out, false)).error(
    { err: new Error("disk full") },
    "could not store",
  );
  const [first, second] = plain.text().split("\n");
  assert.match(first!, / ERROR could not store$/);
  assert.match(second!, /^ {4}Error: disk full$/);
  assert.ok(!plain.text().includes("\x1b["), "no escape codes without color");
  const colored = collector();
  pino({ base: undefined }, prettyDestination(colored.out, true)).warn("careful");
  assert.ok(colored.text().includes("\x1b[33mWARN"), "warnings in yellow on a terminal");
});
