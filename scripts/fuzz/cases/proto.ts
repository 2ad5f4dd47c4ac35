// Prototype-key cases: `__proto__`, `constructor` and the like in action bodies, query parameters,
// header names and cookie names, refused or dropped but never merged (run.ts checks Object.prototype
// afterwards).
import type { Rng } from "../prng.ts";
import { actionCase } from "./actions.ts";
import { type BodyCase, nested, s } from "./bodies.ts";
import { pickTab } from "./builders.ts";
import type { Case, Fixture } from "./types.ts";

/** Bodies whose signals (or body) carry prototype keys: refused (400) or dropped (204), never merged. */
function protoBody(rng: Rng): BodyCase {
  const good = JSON.stringify({ statement: "hello from the fuzzer", nick: "Fuzzy", retry: "" }).slice(1, -1);
  const polluting: Array<[string, string]> = [
    ["signals.__proto__", '{"signals":{"__proto__":{"polluted":"yes"}}}'],
    ["valid + signals.__proto__", `{"signals":{${good},"__proto__":{"polluted":1,"statement":"injected"}}}`],
    ["signals.constructor.prototype", '{"signals":{"constructor":{"prototype":{"polluted":1}}}}'],
    ["signals.prototype", '{"signals":{"prototype":{"polluted":1}}}'],
    ["signal constructor=string", '{"signals":{"nick":"x","constructor":"y"}}'],
    ["signal prototype=1", '{"signals":{"prototype":1}}'],
    ["escaped __proto__ key", '{"signals":{"__pro\\u0074o__":{"polluted":1}}}'],
    ["nested __proto__", '{"signals":{"a":{"__proto__":{"polluted":1}}}}'],
    ["__proto__ in an array", '{"signals":{"a":[{"constructor":{"prototype":{"polluted":1}}}]}}'],
    ["__proto__ null", '{"signals":{"__proto__":null}}'],
    ["__proto__ array", '{"signals":{"__proto__":[{"polluted":1}]}}'],
    ["__proto__ string", `{"signals":{${good},"__proto__":"polluted"}}`],
    ["__proto__ of __proto__", '{"signals":{"__proto__":{"__proto__":{"polluted":1}}}}'],
    ["two __proto__ keys", '{"signals":{"__proto__":{"polluted":1},"__proto__":{"polluted":2}}}'],
    ["top-level __proto__ then signals", `{"__proto__":{"polluted":1},"signals":{${good}}}`],
    ["top-level constructor.prototype", `{"constructor":{"prototype":{"polluted":1}},"signals":{${good}}}`],
    ["cursor.__proto__", `{"signals":{${good}},"cursor":{"__proto__":{"polluted":1}}}`],
    ["statement.__proto__", '{"signals":{"statement":{"__proto__":{"polluted":1}},"nick":"x"}}'],
    ["deep __proto__ at depth 30", `{"signals":{"x":${nested('{"a":', "}", 28, '{"__proto__":{"polluted":1}}')}}}`],
  ];
  // Names the protocol allows (`[A-Za-z_][A-Za-z0-9_]*`) that shadow Object.prototype members, and
  // prototype words as values: accepted like any other signal.
  const allowed: Array<[string, string]> = [
    [
      "signals toString/valueOf/hasOwnProperty",
      `{"signals":{${good},"toString":"x","valueOf":1,"hasOwnProperty":null}}`,
    ],
    ["signals __defineGetter__/__lookupGetter__", `{"signals":{${good},"__defineGetter__":1,"__lookupGetter__":{}}}`],
    [
      "signals isPrototypeOf/toLocaleString",
      `{"signals":{${good},"isPrototypeOf":"x","toLocaleString":{"polluted":1}}}`,
    ],
    ["signals _proto_/__proto/proto__", `{"signals":{${good},"_proto_":1,"__proto":{"polluted":1},"proto__":1}}`],
    ["nick __proto__", '{"signals":{"statement":"constructor","nick":"__proto__","retry":""}}'],
    ["nick constructor", '{"signals":{"statement":"__proto__","nick":"constructor","retry":"prototype"}}'],
    ["nick hasOwnProperty", '{"signals":{"statement":"toString","nick":"hasOwnProperty","retry":""}}'],
    ["a value with key polluted", `{"signals":{${good},"x":{"polluted":1}}}`],
  ];
  if (rng.chance(0.7)) {
    const [name, text] = rng.pick(polluting);
    return { name: `prototype key: ${name}`, body: s(text), verdict: "okOrDecode400" };
  }
  const [name, text] = rng.pick(allowed);
  return { name: `prototype name: ${name}`, body: s(text), verdict: "ok" };
}

/**
 * Prototype keys where a server might merge them into an object: action bodies (most), and query
 * parameters, header names and cookie names of a page or a stream probe with real credentials (those
 * answer as without them). run.ts checks afterwards that Object.prototype gained nothing.
 */
export function protoCase(index: number, rng: Rng, fx: Fixture): Case {
  if (rng.chance(0.7)) return actionCase(index, rng, fx, protoBody);
  const { session, tab } = pickTab(rng, fx);
  const query = rng.pick([
    "__proto__[polluted]=1",
    "__proto__.polluted=1",
    "constructor[prototype][polluted]=1",
    "constructor.prototype.polluted=1",
    "prototype[polluted]=1",
    "__proto__=%7B%22polluted%22%3A1%7D",
    "a[__proto__][polluted]=1",
    "__proto__=1&__proto__=2&constructor=3",
  ]);
  const headers: Record<string, string> = {
    Cookie: rng.chance(0.5) ? `__proto__=polluted; constructor=1; ${session.cookie}` : session.cookie,
  };
  const names = ["__proto__", "constructor", "prototype", "hasOwnProperty", "toString"];
  for (const n of names) if (rng.chance(0.3)) headers[n] = "polluted";
  const shown = `query ${query} headers ${Object.keys(headers).join(",")}`;
  if (rng.chance(0.5)) {
    const method = rng.chance(0.2) ? "HEAD" : "GET";
    const path = `${rng.pick(["/", "/room/Rust", "/room/Go"])}?${query}`;
    return {
      index,
      category: "proto",
      name: `${method} page ${shown}`,
      req: { kind: "http", method, path, headers },
      expect: [200],
      setCookie: "none",
    };
  }
  const q = new URLSearchParams({ tab: tab.tab, path: tab.path, v: fx.version, probe: "1" });
  return {
    index,
    category: "proto",
    name: `GET stream probe ${shown}`,
    req: {
      kind: "http",
      method: "GET",
      path: `/_via/sse?${q}&${query}`,
      headers: { ...headers, Accept: "text/event-stream" },
    },
    expect: [204],
  };
}
