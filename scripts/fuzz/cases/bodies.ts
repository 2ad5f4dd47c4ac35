// Action bodies: valid signals, bad JSON and bytes, deep nesting, oversize bodies, bad signal names and
// types, `cursor` values, each with the verdict the decoder must reach. Action, prototype-key and
// session cases take their bodies from here.
import type { Rng } from "../prng.ts";
import { digits } from "./builders.ts";

const MAX_BODY = 64 * 1024;

type BodyVerdict = "ok" | "decode400" | "type400" | "413" | "okOrDecode400";
/** Which action a body is meant for. */
export type ActionTarget = "say" | "saveNick" | "older";

export interface BodyCase {
  name: string;
  body: Buffer;
  verdict: BodyVerdict;
  /** Send with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean;
  /** Which action this body is meant for. */
  action?: ActionTarget;
}

export const j = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
export const s = (text: string): Buffer => Buffer.from(text);

export function nested(open: string, close: string, depth: number, inner = "0"): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

const GOOD_SIGNALS = { statement: "hello from the fuzzer", nick: "Fuzzy", retry: "" };
const WRONG_VALUES: unknown[] = [1, 0, -1, 1.5, true, false, null, [], ["x"], {}, { a: 1 }];

/** A body with raw bytes between two pieces of JSON text. */
const spliced = (before: string, bytes: number[], after: string): Buffer =>
  Buffer.concat([s(before), Buffer.from(bytes), s(after)]);

/** A body that needs no draw of its own: name, verdict, the body (made when picked: some are MiBs), more. */
type FixedBody = [name: string, verdict: BodyVerdict, body: () => Buffer, more?: Partial<BodyCase>];

const VALID: FixedBody = ["valid signals", "ok", () => j({ signals: GOOD_SIGNALS })];
const DEEP_ARRAY = (depth: number) => () => s(`{"signals":{"x":${nested("[", "]", depth)}}}`);

/** The bodies of bodyCase's draws that pick no more, by the draw (0-44). */
const FIXED_BODIES: Record<number, FixedBody> = {
  0: VALID,
  1: VALID,
  2: VALID,
  3: ["valid, extra unknown signals", "ok", () => j({ signals: { ...GOOD_SIGNALS, zzz: [1, 2], _x: 1 } })],
  4: ["empty signals", "ok", () => j({ signals: {} })],
  5: ["extra top-level keys", "ok", () => j({ signals: GOOD_SIGNALS, extra: { a: [1] }, more: null })],
  6: [
    "10 KB statement",
    "ok",
    () => j({ signals: { ...GOOD_SIGNALS, statement: "x".repeat(10 * 1024) } }),
    { action: "say" },
  ],
  7: ["lone surrogate", "ok", () => s('{"signals":{"statement":"\\ud800","nick":"\\udfff"}}')],
  8: ["escaped NUL in string", "ok", () => s('{"signals":{"statement":"a\\u0000b","nick":"\\u0000"}}')],
  11: ["number 1e999 (Infinity)", "type400", () => s('{"signals":{"nick":1e999}}')],
  12: ["unknown signal 1e999", "ok", () => s('{"signals":{"zz":1e999,"statement":"x"}}')],
  13: ["duplicate keys", "ok", () => s('{"signals":{"statement":1,"statement":"x"}}')],
  16: ["invalid UTF-8 in a string", "decode400", () => spliced('{"signals":{"statement":"', [0xff, 0xfe, 0xc3], '"}}')],
  17: [
    "overlong UTF-8",
    "decode400",
    () => spliced('{"signals":{"statement":"', [0xc0, 0xaf, 0xe0, 0x80, 0xaf], '"}}'),
  ],
  18: ["UTF-8 encoded surrogate", "decode400", () => spliced('{"signals":{"statement":"', [0xed, 0xa0, 0x80], '"}}')],
  19: ["raw NUL byte", "decode400", () => spliced('{"signals":{"statement":"a', [0], 'b"}}')],
  20: ["NUL between tokens", "decode400", () => spliced('{"signals":', [0], "{}}")],
  21: [
    "UTF-8 BOM",
    "okOrDecode400",
    () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), j({ signals: GOOD_SIGNALS })]),
  ],
  22: ["UTF-16 body", "decode400", () => Buffer.from(JSON.stringify({ signals: GOOD_SIGNALS }), "utf16le")],
  25: ["__proto__ signal", "decode400", () => s('{"signals":{"__proto__":{"polluted":1}}}')],
  26: ["__proto__ deep", "decode400", () => s('{"signals":{"x":[{"a":{"__proto__":{"polluted":1}}}]}}')],
  27: ["constructor.prototype", "decode400", () => s('{"signals":{"constructor":{"prototype":{"polluted":1}}}}')],
  28: ["top-level __proto__", "decode400", () => s('{"__proto__":{"polluted":1},"signals":{}}')],
  30: [
    "300 signals",
    "decode400",
    () => j({ signals: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`s${i}`, i])) }),
  ],
  31: [
    "256 signals",
    "ok",
    () => j({ signals: Object.fromEntries(Array.from({ length: 256 }, (_, i) => [`s${i}`, i])) }),
  ],
  32: ["10k nested arrays in a signal", "decode400", DEEP_ARRAY(10_000)],
  33: ["10k nested objects in a signal", "decode400", () => s(`{"signals":{"x":${nested('{"a":', "}", 10_000)}}}`)],
  34: ["10k nested arrays top-level", "decode400", () => s(nested("[", "]", 10_000))],
  35: ["10k nested objects top-level (120 KB)", "413", () => s(nested('{"signals":', "}", 10_000, "{}"))],
  36: ["depth 32 (the limit)", "ok", DEEP_ARRAY(30)],
  37: ["depth 33", "decode400", DEEP_ARRAY(31)],
  38: ["1 MiB body (Content-Length)", "413", () => j({ signals: { statement: "x".repeat(1024 * 1024) } })],
  39: ["1 MiB body (chunked)", "413", () => j({ signals: { statement: "y".repeat(1024 * 1024) } }), { chunked: true }],
  40: ["just over the cap", "413", () => j({ signals: { statement: "z".repeat(MAX_BODY) } })],
  41: ["2 MiB of nested brackets", "413", () => s(nested("[", "]", 1024 * 1024))],
  42: ["60 KB padding array", "ok", () => s(`{"signals":{"statement":"x"},"pad":[${"0,".repeat(29_000)}0]}`)],
  43: ["5k nested objects top-level", "decode400", () => s(nested('{"signals":', "}", 5_000, "{}"))],
  44: ["whitespace-wrapped valid", "ok", () => s(`  \n\t${JSON.stringify({ signals: GOOD_SIGNALS })}\r\n `)],
};

export function bodyCase(rng: Rng): BodyCase {
  const k = rng.int(52);
  if (k >= 45) return cursorBody(rng, GOOD_SIGNALS);
  const fixed = FIXED_BODIES[k];
  if (fixed) {
    const [name, verdict, body, more] = fixed;
    return { name, body: body(), verdict, ...more };
  }
  switch (k) {
    case 9:
    case 10: {
      const sig = rng.pick(["statement", "nick", "retry"]);
      const value = rng.pick(WRONG_VALUES);
      return {
        name: `wrong type ${sig}=${JSON.stringify(value)}`,
        body: j({ signals: { ...GOOD_SIGNALS, [sig]: value } }),
        verdict: "type400",
      };
    }
    case 14:
      return {
        name: "not JSON",
        body: s(
          rng.pick([
            "",
            "{",
            "signals",
            "{'signals':{}}",
            "{signals:{}}",
            "}{",
            "[",
            '"',
            '{"signals":{}} trailing',
            "undefined",
            "NaN",
          ]),
        ),
        verdict: "decode400",
      };
    case 15:
      return { name: "random bytes", body: rng.bytes(1 + rng.int(2048)), verdict: "decode400" };
    case 23:
      return {
        name: "top-level not an object",
        body: s(rng.pick(["null", "[]", "1", '"x"', "true", '[{"signals":{}}]'])),
        verdict: "decode400",
      };
    case 24:
      return {
        name: "signals not an object",
        body: s(
          rng.pick([
            '{"signals":null}',
            '{"signals":[]}',
            '{"signals":"x"}',
            '{"signals":1}',
            "{}",
            '{"Signals":{}}',
            '{"signals":[{"statement":"x"}]}',
          ]),
        ),
        verdict: "decode400",
      };
    default: {
      const bad = rng.pick(["a-b", "", "1x", "x".repeat(65), "é", "a b", "a.b", "$x", "a\u0000", "\ud800", "<script>"]);
      return {
        name: `bad signal name ${JSON.stringify(bad)}`,
        body: j({ signals: { ...GOOD_SIGNALS, [bad]: 1 } }),
        verdict: "decode400",
      };
    }
  }
}

/** Bodies with a `cursor` ("Load older"): a string of 1-15 ASCII digits, anything else is a 400. */
function cursorBody(rng: Rng, good: Record<string, string>): BodyCase {
  const withCursor = (raw: string): Buffer => s(`{"signals":${JSON.stringify(good)},"cursor":${raw}}`);
  const action = (): ActionTarget | undefined => (rng.chance(0.7) ? "older" : undefined);
  switch (rng.int(7)) {
    case 0:
    case 1: {
      const c = rng.chance(0.3)
        ? rng.pick(["0", "1", "2", "00", "000000000000000", "999999999999999", "000000000000001"])
        : digits(rng, 1 + rng.int(15));
      return {
        name: `cursor ${JSON.stringify(c)}`,
        body: j({ signals: good, cursor: c }),
        verdict: "ok",
        action: action(),
      };
    }
    case 2: {
      const v = rng.pick([
        "0",
        "1",
        "123",
        "-1",
        "1.5",
        "1e15",
        "1e999",
        "null",
        "true",
        "false",
        "[]",
        '["12"]',
        "{}",
        '{"pos":"12"}',
      ]);
      return { name: `cursor of the wrong type ${v}`, body: withCursor(v), verdict: "decode400", action: action() };
    }
    case 3: {
      const n = rng.pick([0, 16, 17, 20, 100, 20_000]);
      return {
        name: `cursor of ${n} digits`,
        body: j({ signals: good, cursor: n === 0 ? "" : `1${digits(rng, n - 1)}` }),
        verdict: "decode400",
        action: action(),
      };
    }
    case 4: {
      const c = rng.pick([
        "-1",
        "+1",
        "1.5",
        "1e3",
        " 1",
        "1 ",
        "1\n",
        "0x1F",
        "12a",
        "a12",
        "NaN",
        "Infinity",
        "1_000",
        "1,000",
        "\u0661\u0662",
        "\uff11\uff12",
        "\u0000",
        "1\u0000",
        "\ud800",
        "%31",
        "..",
        "*",
      ]);
      return { name: `cursor not digits "${c}"`, body: withCursor(`"${c}"`), verdict: "decode400", action: action() };
    }
    case 5:
      return rng.chance(0.5)
        ? {
            name: "two cursors, the last valid",
            body: s(`{"signals":${JSON.stringify(good)},"cursor":"x","cursor":"12"}`),
            verdict: "ok",
            action: action(),
          }
        : {
            name: "two cursors, the last invalid",
            body: s(`{"signals":${JSON.stringify(good)},"cursor":"12","cursor":"x"}`),
            verdict: "decode400",
            action: action(),
          };
    default:
      // Not the top-level cursor: a signal named cursor, a differently cased key.
      return rng.chance(0.5)
        ? {
            name: "signal named cursor",
            body: j({ signals: { ...good, cursor: [1] }, cursor: "7" }),
            verdict: "ok",
            action: action(),
          }
        : { name: "key Cursor (not cursor)", body: j({ signals: good, Cursor: [] }), verdict: "ok", action: action() };
  }
}
