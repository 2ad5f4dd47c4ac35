import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SubjectError } from "../../src/pubsub/errors.ts";
import {
  isLiteral,
  MAX_NAME_BYTES,
  MAX_SUBJECT_BYTES,
  matchesPattern,
  nameToToken,
  parsePattern,
  parsePublishSubject,
  patternsOverlap,
  tokenToName,
} from "../../src/pubsub/subjects.ts";

function throwsRule(fn: () => unknown, subject: string, rule: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SubjectError, `expected SubjectError, got ${String(err)}`);
    assert.equal(err.subject, subject);
    assert.match(err.rule, rule);
    assert.ok(err.message.includes(JSON.stringify(subject).slice(0, 40)), err.message);
    return true;
  });
}

describe("parsePublishSubject", () => {
  test("parsePublishSubject_returnsTokens", () => {
    assert.deepEqual(parsePublishSubject("chat.room.abc"), ["chat", "room", "abc"]);
    assert.deepEqual(parsePublishSubject("single"), ["single"]);
  });

  test("parsePublishSubject_acceptsStarInsideTokenAsLiteral", () => {
    assert.deepEqual(parsePublishSubject("chat.a*b.c>d"), ["chat", "a*b", "c>d"]);
  });

  test("parsePublishSubject_acceptsNonAsciiTokens", () => {
    assert.deepEqual(parsePublishSubject("chat.café.😀"), ["chat", "café", "😀"]);
  });

  test("parsePublishSubject_rejectsEmpty", () => {
    throwsRule(() => parsePublishSubject(""), "", /empty/);
  });

  test("parsePublishSubject_rejectsEmptyTokens", () => {
    for (const s of ["chat..a", ".chat.a", "chat.a.", ".", ".."]) throwsRule(() => parsePublishSubject(s), s, /empty/);
  });

  test("parsePublishSubject_rejectsWildcardTokens", () => {
    for (const s of ["chat.*", "chat.>", "*", ">", "a.*.b"]) throwsRule(() => parsePublishSubject(s), s, /`\*` or `>`/);
  });

  test("parsePublishSubject_rejectsAnyWhitespaceOrControl", () => {
    for (const s of [
      "a b",
      "a\tb",
      "a\nb",
      "a\rb",
      "a\u00a0b",
      "a\u2028b",
      "a\u3000b",
      "a\u0000b",
      "a\u007fb",
      "a\u0085b",
      "a\ufeffb",
    ]) {
      throwsRule(() => parsePublishSubject(s), s, /whitespace/);
    }
  });

  test("parsePublishSubject_rejectsUnpairedSurrogates", () => {
    throwsRule(() => parsePublishSubject("a.\ud800"), "a.\ud800", /surrogate/);
  });

  test("parsePublishSubject_capsUtf8Bytes", () => {
    const ok = "a".repeat(MAX_SUBJECT_BYTES);
    assert.equal(parsePublishSubject(ok).length, 1);
    const tooLong = "a".repeat(MAX_SUBJECT_BYTES + 1);
    throwsRule(() => parsePublishSubject(tooLong), tooLong, /1024/);
    // 342 x 3-byte chars = 1026 bytes but only 342 UTF-16 units: the cap is on bytes.
    const wide = "€".repeat(342);
    throwsRule(() => parsePublishSubject(wide), wide, /bytes/);
  });

  test("parsePublishSubject_errorMessageNamesSubjectAndRule", () => {
    try {
      parsePublishSubject("chat..x");
      assert.fail("should throw");
    } catch (err) {
      assert.ok(err instanceof SubjectError);
      assert.match(err.message, /"chat\.\.x"/);
      assert.match(err.message, /empty/);
    }
  });
});

describe("parsePattern", () => {
  test("parsePattern_allowsStarAnywhereAndGtLast", () => {
    assert.deepEqual(parsePattern("*.room.*"), ["*", "room", "*"]);
    assert.deepEqual(parsePattern("chat.>"), ["chat", ">"]);
    assert.deepEqual(parsePattern(">"), [">"]);
    assert.deepEqual(parsePattern("a.*.>"), ["a", "*", ">"]);
  });

  test("parsePattern_rejectsGtBeforeLast", () => {
    for (const s of ["chat.>.x", ">.a", "a.>.>"]) throwsRule(() => parsePattern(s), s, /last/);
  });

  test("parsePattern_rejectsEmptyAndWhitespace", () => {
    throwsRule(() => parsePattern(""), "", /empty/);
    throwsRule(() => parsePattern("a..*"), "a..*", /empty/);
    throwsRule(() => parsePattern("a. *"), "a. *", /whitespace/);
  });
});

describe("isLiteral", () => {
  test("isLiteral_falseOnlyForWholeWildcardTokens", () => {
    assert.equal(isLiteral("a.b"), true);
    assert.equal(isLiteral("a.b*"), true);
    assert.equal(isLiteral("a.*"), false);
    assert.equal(isLiteral("a.>"), false);
  });
});

describe("matchesPattern", () => {
  const cases: [string, string, boolean][] = [
    ["a.b", "a.b", true],
    ["a.b", "a.c", false],
    ["a.*", "a.b", true],
    ["a.*", "a", false],
    ["a.*", "a.b.c", false],
    ["*.b", "a.b", true],
    ["a.>", "a.b", true],
    ["a.>", "a.b.c.d", true],
    ["a.>", "a", false],
    [">", "a", true],
    [">", "a.b", true],
    ["a.*.>", "a.b", false],
    ["a.*.>", "a.b.c", true],
    ["a.b*", "a.bx", false],
    ["a.b*", "a.b*", true],
  ];
  for (const [p, s, want] of cases) {
    test(`matchesPattern_${p}_${s}_is${want}`, () => assert.equal(matchesPattern(p, s), want));
  }
});

describe("patternsOverlap", () => {
  const cases: [string, string, boolean][] = [
    ["a.b", "a.b", true],
    ["a.b", "a.c", false],
    ["a.*", "a.b", true],
    ["a.*", "*.b", true],
    ["a.*", "a.b.c", false],
    ["a.>", "a", false],
    ["a.>", "a.b.c", true],
    ["a.>", "*.*", true],
    ["a.>", "b.>", false],
    [">", "x.y", true],
    ["a.*.c", "a.b.d", false],
    ["a.*.c", "*.b.>", true],
    ["orders.*", "orders.*.x", false],
  ];
  for (const [a, b, want] of cases) {
    test(`patternsOverlap_${a}_${b}_is${want}`, () => {
      assert.equal(patternsOverlap(a, b), want);
      assert.equal(patternsOverlap(b, a), want, "symmetric");
    });
  }
});

describe("nameToToken / tokenToName", () => {
  test("nameToToken_roundTripsUnicodeNames", () => {
    for (const name of [
      "general",
      "my room",
      "café ☕",
      "*",
      ">",
      "a.b",
      "..",
      "😀 party",
      "x".repeat(MAX_NAME_BYTES),
    ]) {
      const token = nameToToken(name);
      assert.match(token, /^[A-Za-z0-9_-]+$/);
      assert.deepEqual(parsePublishSubject(`chat.${token}`), ["chat", token]);
      assert.equal(tokenToName(token), name);
    }
  });

  test("nameToToken_normalisesToNfc", () => {
    const decomposed = "cafe\u0301";
    const composed = "caf\u00e9";
    assert.equal(nameToToken(decomposed), nameToToken(composed));
    assert.equal(tokenToName(nameToToken(decomposed)), composed);
  });

  test("nameToToken_rejectsEmptyAndTooLong", () => {
    throwsRule(() => nameToToken(""), "", /empty/);
    const long = "x".repeat(MAX_NAME_BYTES + 1);
    throwsRule(() => nameToToken(long), long, /96/);
    throwsRule(() => nameToToken("\ud800"), "\ud800", /surrogate/);
  });

  test("tokenToName_rejectsNonCanonicalTokens", () => {
    const bad = [
      "", // empty
      "a", // length % 4 == 1
      "YQ==", // padding
      "a+b/", // base64, not base64url
      "YR", // "a" has canonical "YQ": non-zero trailing bits
      "_w", // 0xff: invalid UTF-8
      "Y2FmZcyB", // "cafe\u0301": valid UTF-8 but not NFC
      "a.b",
    ];
    for (const t of bad) throwsRule(() => tokenToName(t), t, /canonical/);
  });
});
