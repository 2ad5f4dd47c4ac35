import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SubjectError } from "../../src/pubsub/errors.ts";
import { SubjectRouter } from "../../src/pubsub/router.ts";
import { matchesPattern } from "../../src/pubsub/subjects.ts";

const sorted = (xs: readonly string[]) => [...xs].sort();

describe("SubjectRouter", () => {
  test("SubjectRouter_matchesLiteralStarAndGt", () => {
    const r = new SubjectRouter<string>();
    r.add("a.b", "lit");
    r.add("a.*", "star");
    r.add("a.>", "gt");
    r.add(">", "all");
    r.add("*.b", "starb");
    r.add("a.b.c", "deep");
    assert.deepEqual(sorted(r.match("a.b")), ["all", "gt", "lit", "star", "starb"]);
    assert.deepEqual(sorted(r.match("a.b.c")), ["all", "deep", "gt"]);
    assert.deepEqual(sorted(r.match("a")), ["all"]);
    assert.deepEqual(sorted(r.match("x.y")), ["all"]);
    assert.deepEqual(sorted(r.match("x.b")), ["all", "starb"]);
  });

  test("SubjectRouter_gtNeedsAtLeastOneToken", () => {
    const r = new SubjectRouter<string>();
    r.add("a.>", "gt");
    assert.deepEqual(r.match("a"), []);
    assert.deepEqual(r.match("a.x"), ["gt"]);
  });

  test("SubjectRouter_starInsideTokenIsLiteral", () => {
    const r = new SubjectRouter<string>();
    r.add("a.b*", "lit");
    assert.deepEqual(r.match("a.bx"), []);
    assert.deepEqual(r.match("a.b*"), ["lit"]);
  });

  test("SubjectRouter_removerIsIdempotentAndPrunes", () => {
    const r = new SubjectRouter<string>();
    const off1 = r.add("a.*.c", "x");
    const off2 = r.add("a.*.c", "y");
    assert.equal(r.size, 2);
    off1();
    off1();
    assert.equal(r.size, 1);
    assert.deepEqual(r.match("a.b.c"), ["y"]);
    off2();
    assert.equal(r.size, 0);
    assert.deepEqual(r.match("a.b.c"), []);
    // Re-adding after pruning works, and a stale remover does not touch the new entry.
    r.add("a.*.c", "z");
    off1();
    off2();
    assert.deepEqual(r.match("a.b.c"), ["z"]);
  });

  test("SubjectRouter_sameValueUnderTwoPatternsMatchesTwice", () => {
    const r = new SubjectRouter<string>();
    r.add("a.*", "v");
    r.add("a.>", "v");
    assert.deepEqual(r.match("a.b"), ["v", "v"]);
  });

  test("SubjectRouter_rejectsInvalidPatterns", () => {
    const r = new SubjectRouter<string>();
    assert.throws(() => r.add("a.>.b", "x"), SubjectError);
    assert.throws(() => r.add("", "x"), SubjectError);
    assert.equal(r.size, 0);
  });

  test("SubjectRouter_agreesWithMatchesPatternOnRandomInput", () => {
    // Property check against the simple reference matcher.
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const toks = ["a", "b", "c"];
    const randPattern = () => {
      const n = 1 + rnd(4);
      const parts: string[] = [];
      for (let i = 0; i < n; i++) {
        const k = rnd(6);
        if (i === n - 1 && k === 5) parts.push(">");
        else if (k >= 3) parts.push("*");
        else parts.push(toks[k]!);
      }
      return parts.join(".");
    };
    const randSubject = () => {
      const n = 1 + rnd(4);
      return Array.from({ length: n }, () => toks[rnd(3)]!).join(".");
    };
    const r = new SubjectRouter<string>();
    const patterns = Array.from({ length: 60 }, randPattern);
    const removers = patterns.map((p, i) => r.add(p, `${i}`));
    // Remove a third to exercise pruning.
    const live = new Set(patterns.map((_, i) => i));
    for (let i = 0; i < patterns.length; i += 3) {
      removers[i]!();
      live.delete(i);
    }
    for (let k = 0; k < 300; k++) {
      const s = randSubject();
      const want = [...live]
        .filter((i) => matchesPattern(patterns[i]!, s))
        .map(String)
        .sort();
      assert.deepEqual(sorted(r.match(s)), want, `subject ${s}`);
    }
  });

  test("SubjectRouter_scalesWithoutPerSubscriberMatching", () => {
    // Relative, not against the wall clock: 50k matches over 100× the subscribers may not cost anywhere
    // near 100× as much (matching each subscriber would). Fresh routers each round (matches are
    // cached), and the best of three rounds, so a pause of the machine does not count.
    const fiftyThousandMatches = (subscribers: number): number => {
      const r = new SubjectRouter<number>();
      for (let i = 0; i < subscribers; i++) r.add(`chat.room.r${i}`, i);
      const t0 = performance.now();
      for (let i = 0; i < 50_000; i++) r.match(`chat.room.r${i}`);
      return performance.now() - t0;
    };
    const few: number[] = [];
    const many: number[] = [];
    for (let round = 0; round < 3; round++) {
      few.push(fiftyThousandMatches(500));
      many.push(fiftyThousandMatches(50_000));
    }
    const ratio = Math.min(...many) / Math.min(...few);
    assert.ok(ratio < 20, `50k matches over 50k subscribers cost ${ratio.toFixed(1)}× those over 500`);
  });
});

test("SubjectRouter_matchSeesAddsAndRemovesAfterACachedMatch", () => {
  const r = new SubjectRouter<string>();
  r.add("room.a", "first");
  assert.deepEqual([...r.match("room.a")], ["first"]);
  const remove = r.add("room.*", "second");
  assert.deepEqual([...r.match("room.a")].sort(), ["first", "second"]);
  remove();
  assert.deepEqual([...r.match("room.a")], ["first"]);
});
