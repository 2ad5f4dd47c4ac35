import assert from "node:assert/strict";
import { test } from "node:test";
import { HttpError } from "../../src/server/http-error.ts";
import { decodeActionBody, encodeSignalsForPage, MAX_DEPTH, MAX_SIGNALS } from "../../src/server/signals-codec.ts";

function body(text: string): Buffer {
  return Buffer.from(text, "utf8");
}

/** Asserts a 400 whose one-line reason matches `reason`. */
function assertBadRequest(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HttpError, `expected HttpError, got ${String(err)}`);
    assert.equal(err.status, 400);
    assert.match(err.message, reason);
    assert.ok(!/[\r\n]/.test(err.message), "reason is one line");
    assert.ok(err.message.length < 200, "reason is short");
    return true;
  });
}

test("action body decodes to its signals", () => {
  const signals = decodeActionBody(body('{"signals":{"count":3,"draft":"hé","on":true,"tags":["a"],"o":{"k":null}}}'));
  assert.deepEqual({ ...signals }, { count: 3, draft: "hé", on: true, tags: ["a"], o: { k: null } });
  assert.equal(Object.getPrototypeOf(signals), null, "a null-prototype copy");
});

test("an empty signals object is fine and other top-level fields are ignored", () => {
  assert.deepEqual({ ...decodeActionBody(body('{"signals":{},"extra":1}')) }, {});
});

test("bad JSON is a 400 with a short reason", () => {
  assertBadRequest(() => decodeActionBody(body('{"signals": {')), /^body is not valid JSON: /);
  assertBadRequest(() => decodeActionBody(body("")), /^body is not valid JSON: /);
  assertBadRequest(() => decodeActionBody(body(`{"signals":${"x".repeat(10_000)}}`)), /^body is not valid JSON: /);
});

test("a body that is not an object with a signals object is a 400", () => {
  assertBadRequest(() => decodeActionBody(body("[]")), /must be a JSON object/);
  assertBadRequest(() => decodeActionBody(body("null")), /must be a JSON object/);
  assertBadRequest(() => decodeActionBody(body('"signals"')), /must be a JSON object/);
  assertBadRequest(() => decodeActionBody(body("42")), /must be a JSON object/);
  assertBadRequest(() => decodeActionBody(body("{}")), /no signals object/);
  assertBadRequest(() => decodeActionBody(body('{"signals":null}')), /signals must be an object/);
  assertBadRequest(() => decodeActionBody(body('{"signals":[1,2]}')), /signals must be an object/);
  assertBadRequest(() => decodeActionBody(body('{"signals":"x"}')), /signals must be an object/);
});

test("nesting 10,000 levels deep is a 400, not a stack overflow", () => {
  const deepArrays = `{"signals":{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`;
  assertBadRequest(() => decodeActionBody(body(deepArrays)), /deeper than 32 levels/);
  const deepObjects = `{"signals":{"a":${'{"b":'.repeat(10_000)}1${"}".repeat(10_000)}}}`;
  assertBadRequest(() => decodeActionBody(body(deepObjects)), /deeper than 32 levels/);
});

test("nesting up to the limit is accepted and one more level is refused", () => {
  // The body is level 1 and `signals` level 2, so a signal value may nest MAX_DEPTH - 2 arrays.
  const nest = (n: number) => `{"signals":{"a":${"[".repeat(n)}${"]".repeat(n)}}}`;
  assert.doesNotThrow(() => decodeActionBody(body(nest(MAX_DEPTH - 2))));
  assertBadRequest(() => decodeActionBody(body(nest(MAX_DEPTH - 1))), /deeper than/);
});

test("invalid UTF-8 is a 400, not silently replaced", () => {
  const invalid = Buffer.concat([body('{"signals":{"a":"'), Buffer.from([0xc3, 0x28]), body('"}}')]);
  assertBadRequest(() => decodeActionBody(invalid), /^body is not valid UTF-8$/);
  const overlong = Buffer.concat([body('{"signals":{"a":"'), Buffer.from([0xc0, 0xaf]), body('"}}')]);
  assertBadRequest(() => decodeActionBody(overlong), /not valid UTF-8/);
  const loneSurrogate = Buffer.concat([body('{"signals":{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), body('"}}')]);
  assertBadRequest(() => decodeActionBody(loneSurrogate), /not valid UTF-8/);
});

test("raw NUL bytes are a 400", () => {
  assertBadRequest(() => decodeActionBody(body('{"signals":{"a":"x\u0000y"}}')), /NUL/);
  assertBadRequest(() => decodeActionBody(body('{"signals":{}}\u0000')), /NUL/);
});

test("signal names must be short identifiers, and the reason names the field", () => {
  for (const name of ["1abc", "a-b", "a.b", "", "é", "a b", "x".repeat(65)]) {
    assertBadRequest(() => decodeActionBody(body(JSON.stringify({ signals: { [name]: 1 } }))), /invalid signal name/);
  }
  assertBadRequest(() => decodeActionBody(body('{"signals":{"bad-name":1}}')), /"bad-name"/);
  // A hostile name is truncated and escaped in the reason.
  const long = `${"y".repeat(500)}\n`;
  assertBadRequest(() => decodeActionBody(body(JSON.stringify({ signals: { [long]: 1 } }))), /"y{40}…"/);
  const ok = decodeActionBody(body(JSON.stringify({ signals: { _local: 1, A9_z: 2, ["x".repeat(64)]: 3 } })));
  assert.equal(Object.keys(ok).length, 3);
});

test(`at most ${MAX_SIGNALS} signals are accepted`, () => {
  const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`s${i}`, i]));
  assert.equal(Object.keys(decodeActionBody(body(JSON.stringify({ signals: many(MAX_SIGNALS) })))).length, MAX_SIGNALS);
  assertBadRequest(() => decodeActionBody(body(JSON.stringify({ signals: many(MAX_SIGNALS + 1) }))), /at most 256/);
});

test("a prototype pollution attempt is refused and does not pollute Object.prototype", () => {
  const attempts = [
    '{"signals":{"__proto__":{"x":1}}}',
    '{"signals":{"a":{"__proto__":{"x":1}}}}',
    '{"signals":{"a":[{"constructor":{"prototype":{"x":1}}}]}}',
    '{"signals":{"constructor":{"prototype":{"x":1}}}}',
    '{"__proto__":{"x":1},"signals":{}}',
  ];
  for (const text of attempts) {
    assertBadRequest(() => decodeActionBody(body(text)), /reserved key/);
  }
  assert.equal(({} as Record<string, unknown>).x, undefined);
  assert.equal(Object.hasOwn(Object.prototype, "x"), false);
});

test("signals are encoded for the page as JSON that cannot break out of HTML", () => {
  const text = encodeSignalsForPage({ msg: "</script><b>&amp;\u2028", n: 1 });
  assert.ok(!/[<>&\u2028\u2029]/.test(text));
  assert.deepEqual(JSON.parse(text), { msg: "</script><b>&amp;\u2028", n: 1 });
});
