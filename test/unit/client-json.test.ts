// The browser runtime's JSON reader and merge patch are pure: checked here in Node, in the browser by
// test/browser/runtime.test.ts.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import { mergePatch, parseJson, type Signals, safeKey } from "../../src/client/json.ts";

const PROBES = ["polluted", "set", "action"];

/** Fails the test if anything reached Object.prototype, and cleans up so later tests start clean. */
afterEach(() => {
  const leaked = PROBES.filter((k) => Object.hasOwn(Object.prototype, k));
  for (const k of leaked) delete (Object.prototype as Record<string, unknown>)[k];
  assert.deepEqual(leaked, [], "Object.prototype gained keys");
});

/** Every object in the value, at any depth. */
function objects(v: unknown): object[] {
  if (typeof v !== "object" || v === null) return [];
  return [v, ...Object.values(v).flatMap(objects)];
}

test("safeKey refuses exactly __proto__, constructor and prototype", () => {
  for (const k of ["__proto__", "constructor", "prototype"]) assert.equal(safeKey(k), false, k);
  for (const k of ["proto", "Constructor", "toString", "valueOf", "hasOwnProperty", "_local", ""]) {
    assert.equal(safeKey(k), true, k);
  }
});

test("parseJson drops __proto__, constructor and prototype at every depth, arrays included", () => {
  const parsed = parseJson(
    '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":1,' +
      '"a":{"__proto__":{"polluted":"yes"},"b":[{"constructor":1,"c":2}],"keep":true},"toString":"t"}',
  );
  assert.deepEqual(JSON.parse(JSON.stringify(parsed)), { a: { b: [{ c: 2 }], keep: true }, toString: "t" });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("parseJson makes every object prototype-free, so an absent key is undefined even on a polluted Object.prototype", () => {
  const parsed = parseJson('{"a":{"b":[{"c":{}}]},"action":"go"}') as Record<string, unknown>;
  for (const o of objects(parsed)) {
    if (!Array.isArray(o)) assert.equal(Object.getPrototypeOf(o), null);
  }
  (Object.prototype as Record<string, unknown>).set = { evil: "yes" };
  try {
    assert.equal(parsed.set, undefined);
  } finally {
    delete (Object.prototype as Record<string, unknown>).set;
  }
});

test("parseJson keeps scalars, arrays and top-level non-objects as JSON.parse does", () => {
  assert.equal(parseJson("3"), 3);
  assert.equal(parseJson('"__proto__"'), "__proto__");
  assert.equal(parseJson("null"), null);
  assert.deepEqual(parseJson('[1,"x",null,[true]]'), [1, "x", null, [true]]);
  assert.throws(() => parseJson("{bad"), SyntaxError);
});

test("a merge patch naming __proto__ changes no prototype, at the top or nested under a signal", () => {
  const target: Signals = { profile: { name: "a" } };
  // Written as JSON.parse output: an object literal would treat "__proto__" as the prototype.
  const patch = JSON.parse(
    '{"__proto__":{"polluted":"yes"},"profile":{"__proto__":{"polluted":"yes"}},"fresh":{"__proto__":{"polluted":"yes"},"x":1}}',
  ) as Signals;
  mergePatch(target, patch, false);
  assert.deepEqual(JSON.parse(JSON.stringify(target)), { profile: { name: "a" }, fresh: { x: 1 } });
  assert.equal(Object.getPrototypeOf(target), Object.prototype, "the target keeps its own prototype");
  assert.equal(Object.getPrototypeOf(target.profile), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("a merge patch naming constructor or prototype adds no key, with or without onlyIfMissing", () => {
  const patch = JSON.parse('{"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"},"ok":1}');
  for (const onlyIfMissing of [false, true]) {
    const target: Signals = Object.create(null);
    mergePatch(target, patch as Signals, onlyIfMissing);
    assert.deepEqual(Object.keys(target), ["ok"]);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("a merge patch with onlyIfMissing sets a name an ordinary object inherits (toString) as a new key", () => {
  const target: Signals = {};
  mergePatch(target, { toString: "t", hasOwnProperty: 1 }, true);
  assert.equal(Object.hasOwn(target, "toString"), true);
  assert.equal(target.toString, "t");
  assert.equal(target.hasOwnProperty, 1);
});

test("a merge patch creates prototype-free objects and still follows RFC 7386", () => {
  const target: Signals = Object.create(null);
  mergePatch(target, { a: { b: 1, c: { d: 2 } }, gone: 1, keep: "k" }, false);
  assert.equal(Object.getPrototypeOf(target.a), null);
  assert.equal(Object.getPrototypeOf((target.a as Signals).c), null);
  mergePatch(target, { a: { b: null, c: { e: 3 } }, gone: null, list: [1, 2] }, false);
  mergePatch(target, { keep: "changed", added: true }, true);
  assert.deepEqual(JSON.parse(JSON.stringify(target)), {
    a: { c: { d: 2, e: 3 } },
    keep: "k",
    list: [1, 2],
    added: true,
  });
});
