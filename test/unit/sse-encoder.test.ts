import assert from "node:assert/strict";
import { test } from "node:test";
import {
  comment,
  customEvent,
  executeScript,
  patchElements,
  patchSignals,
  withEventId,
} from "../../src/server/sse/encoder.ts";

test("patch-elements with defaults writes only the event line and the elements", () => {
  assert.equal(
    patchElements('<div id="x">hi</div>'),
    'event: datastar-patch-elements\ndata: elements <div id="x">hi</div>\n\n',
  );
});

test("patch-elements writes every option in SDK order and omits the defaults", () => {
  assert.equal(
    patchElements("<li>a</li>", {
      selector: "#list",
      mode: "append",
      useViewTransition: true,
      namespace: "svg",
      eventId: "7",
      retryDuration: 2500,
    }),
    "event: datastar-patch-elements\nid: 7\nretry: 2500\n" +
      "data: selector #list\ndata: mode append\ndata: useViewTransition true\ndata: namespace svg\n" +
      "data: elements <li>a</li>\n\n",
  );
  assert.equal(
    patchElements("<p></p>", { mode: "outer", useViewTransition: false, namespace: "html", retryDuration: 1000 }),
    "event: datastar-patch-elements\ndata: elements <p></p>\n\n",
  );
});

test("patch-elements in remove mode needs no elements", () => {
  assert.equal(
    patchElements(undefined, { selector: "#gone", mode: "remove" }),
    "event: datastar-patch-elements\ndata: selector #gone\ndata: mode remove\n\n",
  );
});

test("multi-line elements become one data line each", () => {
  assert.equal(
    patchElements("<ul>\n  <li>a</li>\n</ul>"),
    "event: datastar-patch-elements\ndata: elements <ul>\ndata: elements   <li>a</li>\ndata: elements </ul>\n\n",
  );
});

test("carriage returns in elements cannot break framing: CRLF and lone CR become line splits", () => {
  const out = patchElements("<p>a</p>\r\n<p>b</p>\r<p>c</p>\r\n");
  assert.equal(
    out,
    "event: datastar-patch-elements\n" +
      "data: elements <p>a</p>\ndata: elements <p>b</p>\ndata: elements <p>c</p>\ndata: elements \n\n",
  );
  assert.ok(!out.includes("\r"));
});

test("a value cannot inject its own SSE fields or events", () => {
  const out = patchElements("<p>x</p>\n\nevent: evil\ndata: boom");
  // Every line but the event line and the terminating blank line is a data line of this event.
  const lines = out.split("\n");
  assert.equal(lines[0], "event: datastar-patch-elements");
  assert.deepEqual(lines.slice(-2), ["", ""]);
  for (const line of lines.slice(1, -2)) assert.match(line, /^data: elements /);
});

test("single-line fields refuse line breaks instead of silently addressing something else", () => {
  assert.throws(() => patchElements("<p></p>", { selector: "#a\n#b" }), TypeError);
  assert.throws(() => patchElements("<p></p>", { selector: "#a\r" }), TypeError);
  assert.throws(() => patchSignals({}, { eventId: "1\r\nevent: x" }), TypeError);
  assert.throws(() => customEvent("via-reload\n", []), TypeError);
  assert.throws(() => customEvent("via-reload", [["bad key", "x"]]), TypeError);
});

test("an unknown patch mode or a bad retry is a programming error", () => {
  // @ts-expect-error deliberately wrong mode
  assert.throws(() => patchElements("<p></p>", { mode: "sideways" }), TypeError);
  assert.throws(() => patchElements("<p></p>", { retryDuration: -1 }), RangeError);
  assert.throws(() => patchElements("<p></p>", { retryDuration: 1.5 }), RangeError);
});

test("patch-signals serialises an object on one line, even with newlines inside strings", () => {
  assert.equal(
    patchSignals({ draft: "two\nlines", n: 1 }),
    'event: datastar-patch-signals\ndata: signals {"draft":"two\\nlines","n":1}\n\n',
  );
});

test("patch-signals writes onlyIfMissing only when true", () => {
  assert.equal(
    patchSignals({ a: 1 }, { onlyIfMissing: true, eventId: "3" }),
    'event: datastar-patch-signals\nid: 3\ndata: onlyIfMissing true\ndata: signals {"a":1}\n\n',
  );
  assert.equal(
    patchSignals({ a: 1 }, { onlyIfMissing: false }),
    'event: datastar-patch-signals\ndata: signals {"a":1}\n\n',
  );
});

test("patch-signals passes raw JSON text through, one data line per line", () => {
  assert.equal(
    patchSignals('{\r\n"a": 1,\r"b": 2\n}'),
    'event: datastar-patch-signals\ndata: signals {\ndata: signals "a": 1,\ndata: signals "b": 2\ndata: signals }\n\n',
  );
});

test("execute-script appends a self-removing script to body", () => {
  assert.equal(
    executeScript("go()"),
    "event: datastar-patch-elements\ndata: selector body\ndata: mode append\n" +
      'data: elements <script data-effect="el.remove()">go()</script>\n\n',
  );
});

test("execute-script keeps the script when asked and escapes attribute values", () => {
  assert.equal(
    executeScript("go()", { autoRemove: false, attributes: { type: "module", "data-x": 'a"b&c' }, eventId: "9" }),
    "event: datastar-patch-elements\nid: 9\ndata: selector body\ndata: mode append\n" +
      'data: elements <script type="module" data-x="a&quot;b&amp;c">go()</script>\n\n',
  );
  assert.throws(() => executeScript("x", { attributes: { "on load": "x" } }), TypeError);
});

test("custom events write key-value data lines in order, with id and retry", () => {
  assert.equal(
    customEvent("via-reload", [["reason", "runtime version changed"]], { eventId: "12", retryDuration: 5000 }),
    "event: via-reload\nid: 12\nretry: 5000\ndata: reason runtime version changed\n\n",
  );
  assert.equal(
    customEvent("via-bye", [
      ["reason", "shutting down\r\nsoon"],
      ["code", "1"],
    ]),
    "event: via-bye\ndata: reason shutting down\ndata: reason soon\ndata: code 1\n\n",
  );
});

test("comments are keepalives that clients ignore", () => {
  assert.equal(comment("keepalive"), ": keepalive\n\n");
  assert.equal(comment("a\r\nb"), ": a\n: b\n\n");
  assert.equal(comment(""), ":\n\n");
});

test("withEventId adds the id line after the event line and refuses an event that has one", () => {
  const plain = patchElements("<p>x</p>", { selector: "#a", mode: "append" });
  assert.equal(withEventId(plain, "7"), patchElements("<p>x</p>", { selector: "#a", mode: "append", eventId: "7" }));
  assert.throws(() => withEventId(withEventId(plain, "7"), "8"), /has no id yet/);
  assert.throws(() => withEventId(plain, "1\n2"), /line break/);
});
