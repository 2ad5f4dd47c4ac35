// The chat's nickname rules (apps/chat/identity.ts): what a name may contain, when two names look
// alike (UTS #39 skeletons, any case), and random default names that avoid the names in a room.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  DEFAULT_AUTHORS,
  freeRandomAuthor,
  IdentityStore,
  lookalikeOf,
  nameTaken,
  skeleton,
  validateNickname,
} from "../../apps/chat/identity.ts";
import { openPubSub } from "../../src/index.ts";

/** The message validateNickname refuses `input` with (fails the test if it accepts it). */
function refusal(input: string): string {
  try {
    const accepted = validateNickname(input);
    assert.fail(`${JSON.stringify(input)} was accepted as ${JSON.stringify(accepted)}`);
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    return (err as Error).message;
  }
}

test("nickname rules refuse invisible, filler and blank characters, naming the character to remove", () => {
  const cases: Array<[string, string]> = [
    ["Wise\u3164Tiger", "U+3164"], // HANGUL FILLER (the reported one)
    ["\u3164", "U+3164"],
    ["Wise\uFFA0Tiger", "U+FFA0"], // HALFWIDTH HANGUL FILLER
    ["\u115FTiger", "U+115F"], // HANGUL CHOSEONG FILLER
    ["Tiger\u1160", "U+1160"], // HANGUL JUNGSEONG FILLER
    ["\u2800", "U+2800"], // BRAILLE PATTERN BLANK (not default-ignorable)
    ["Wise\u2800Tiger", "U+2800"],
    ["Tiger\u{1D159}", "U+1D159"], // MUSICAL SYMBOL NULL NOTEHEAD
    ["Tiger\uFFFC", "U+FFFC"], // OBJECT REPLACEMENT CHARACTER
    ["Wise\u200BTiger", "U+200B"], // ZERO WIDTH SPACE (Cf, default-ignorable)
    ["Wi\u00ADse Tiger", "U+00AD"], // SOFT HYPHEN
    ["Wise\u034FTiger", "U+034F"], // COMBINING GRAPHEME JOINER (a mark, default-ignorable)
    ["Tiger\uFE0F", "U+FE0F"], // a presentation selector after a letter
    ["Tiger\u{E0041}", "U+E0041"], // TAG LATIN CAPITAL LETTER A
    ["Wise\u180ETiger", "U+180E"], // MONGOLIAN VOWEL SEPARATOR
    ["Bob\u202Eevil", "U+202E"], // RIGHT-TO-LEFT OVERRIDE
    ["Bob\u2066x\u2069", "U+2066"], // LEFT-TO-RIGHT ISOLATE
    ["Bob\u0007", "U+0007"], // BEL (Cc)
    ["Bob\u0085", "U+0085"], // NEXT LINE (Cc; not JavaScript whitespace)
    ["Bob\uE000", "U+E000"], // private use
    ["Bob\u0378", "U+0378"], // unassigned
    ["Bob\uD800", "U+D800"], // a lone surrogate
  ];
  for (const [input, named] of cases) {
    const message = refusal(input);
    assert.match(message, /invisible, blank or control character/, JSON.stringify(input));
    assert.ok(message.includes(named), `${JSON.stringify(input)}: ${message}`);
    assert.match(message, /Remove it/);
  }
});

test("nickname rules turn every kind of space and line break into one plain space", () => {
  // Non-ASCII spaces and separators are whitespace: normalised, so none survives into a name.
  for (const sp of ["\u00A0", "\u2000", "\u2007", "\u200A", "\u202F", "\u205F", "\u3000", "\u2028", "\u2029", "\t\n"]) {
    assert.equal(validateNickname(`Wise${sp}Tiger`), "Wise Tiger", `U+${sp.codePointAt(0)!.toString(16)}`);
  }
  assert.equal(validateNickname("  Wise   Tiger \u3000"), "Wise Tiger");
  assert.match(refusal("\u3000 \u00A0"), /cannot be empty/);
});

test("nickname rules refuse a combining mark that starts a word or more than 2 stacked marks", () => {
  assert.match(refusal("\u0301Tiger"), /cannot start a word with an accent or combining mark \(U\+0301\)/);
  assert.match(refusal("Wise \u0308Tiger"), /start a word/);
  assert.match(refusal("\u0E34\u0E48"), /start a word/); // Thai marks with no consonant under them
  // NFC first: "e" + acute + circumflex + tilde is "é" + 2 marks (accepted); one more is too many.
  assert.equal(validateNickname("Ze\u0301\u0302\u0303d"), "Zé\u0302\u0303d");
  assert.match(refusal("Ze\u0301\u0302\u0303\u0304d"), /cannot stack more than 2 accents or marks on one letter/);
  assert.match(refusal("Zalgo x\u0300\u0301\u0302"), /stack more than 2/);
  assert.match(refusal(`T${"\u0336\u0337".repeat(10)}iger`), /stack more than 2/);
});

test("nickname rules accept real names in scripts that need marks, and emoji", () => {
  const names = [
    "Nguyễn Thị Minh Khai", // Vietnamese (NFC)
    "Nguye\u0302\u0303n Thi\u0323", // Vietnamese typed decomposed: NFC makes it "Nguyễn Thị"
    "अनुष्का शर्मा", // Hindi: virama, vowel signs
    "प्रियंका चोपड़ा", // Hindi: vowel sign + anusvara (2 marks in a row), nukta
    "हिंदी", // vowel sign + anusvara
    "สมชาย ใจดี", // Thai
    "กิตติศักดิ์", // Thai: vowel + thanthakhat (2 marks)
    "ผู้ใหญ่", // Thai: vowel + tone mark
    "مُحَمَّد", // Arabic with harakat: shadda + fatha (2 marks)
    "محمد علي", // Arabic
    "דוד כהן", // Hebrew
    "Ана Иванова", // Cyrillic alone is fine: it is the look-alike of someone present that is refused
    "Ζωή", // Greek
    "José Ångström", // Latin with accents
    "Ólafur Þór", // Icelandic
    "张伟", // Chinese
    "山田太郎", // Japanese
    "김민준", // Korean (Hangul syllables, no fillers)
    "ஸ்ரீநிவாசன்", // Tamil
    "Anna ❤️", // an emoji with its presentation selector
    "Team 1️⃣", // a keycap: digit, selector, enclosing mark
    "🐯 Wise Tiger",
  ];
  for (const name of names) assert.equal(validateNickname(name), name.normalize("NFC"), name);
  assert.equal(validateNickname("Nguye\u0302\u0303n"), "Nguyễn");
});

test("nickname rules still refuse empty and over-long names, saying what to change", () => {
  assert.match(refusal(""), /cannot be empty: type a name/);
  assert.match(refusal("x".repeat(33)), /at most 32 characters; yours has 33\. Shorten it\./);
  assert.equal(validateNickname("🐯".repeat(32)), "🐯".repeat(32), "characters are code points");
});

test("a Latin name and its Cyrillic or Greek look-alike have the same skeleton", () => {
  const pairs: Array<[string, string]> = [
    ["Wise Tiger", "W\u0456se \u0422iger"], // Cyrillic і and Т
    ["Wise Tiger", "\u051Cise Tiger"], // Cyrillic Ԝ
    ["paypal", "\u0440\u0430\u0443\u0440\u0430l"], // Cyrillic р а у
    ["Happy Panda", "H\u0430ppy P\u0430nd\u0430"], // Cyrillic а
    ["Bold Bear", "\u0392old \u0392ear"], // Greek Β
    ["Otto", "0tto"], // zero and O
    ["Bill", "BiII"], // capital I and l
    ["modern", "rnodern"], // rn and m
  ];
  for (const [a, b] of pairs) {
    assert.equal(skeleton(a), skeleton(b), `${a} vs ${b}`);
    assert.ok(lookalikeOf(b, [{ id: "x", name: a }], "me"), `${a} vs ${b}`);
    assert.ok(lookalikeOf(a, [{ id: "x", name: b }], "me"), `${b} vs ${a}`);
  }
  assert.equal(skeleton("Wise Tiger"), "wise tiger");
});

test("names that differ only in case, or in an emoji presentation selector, look alike", () => {
  const present = [{ id: "x", name: "Wise Tiger" }];
  // Capital I looks like l, not like i; Cyrillic т looks like no Latin letter, its capital like T.
  for (const name of ["wise tiger", "WISE TIGER", "wISE tIGER", "W\u0406SE \u0422IGER", "w\u0456se \u0442iger"]) {
    assert.ok(lookalikeOf(name, present, "me"), name);
  }
  assert.ok(lookalikeOf("VICTOR", [{ id: "x", name: "\u03BDictor" }], "me"), "Greek ν looks like v, not its capital");
  assert.ok(lookalikeOf("Anna \u2764", [{ id: "x", name: "Anna \u2764\uFE0F" }], "me"));
});

test("names that really differ do not look alike, and one's own name is no conflict", () => {
  const present = [
    { id: "me", name: "Wise Tiger" },
    { id: "x", name: "Calm Fox" },
  ];
  assert.equal(lookalikeOf("Wise Tiger", present, "me"), undefined, "my own current name");
  assert.equal(lookalikeOf("WISE TIGER", present, "me"), undefined, "my own name in capitals");
  for (const name of ["Wise Tigers", "Wise Tiger 2", "José", "Calm Fax", "Иван", "Wise Lion"]) {
    assert.equal(lookalikeOf(name, present, "me"), undefined, name);
  }
  assert.equal(lookalikeOf("Jose", [{ id: "x", name: "José" }], "me"), undefined, "an accent is visible");
  assert.equal(lookalikeOf("calm fox", present, "me")?.id, "x");
});

test("nameTaken indexes a room once and agrees with lookalikeOf, counting a name held twice", () => {
  const people = new Map([
    ["a", { id: "a", name: "Wise Tiger" }],
    ["b", { id: "b", name: "Calm Fox" }],
    ["c", { id: "c", name: "calm fox" }],
  ]);
  assert.equal(nameTaken("W\u0456se \u0422iger", people, "me"), true);
  assert.equal(nameTaken("wise tiger", people, "a"), false, "a's own name");
  assert.equal(nameTaken("Calm Fox", people, "b"), true, "c has it too");
  assert.equal(nameTaken("Bold Bear", people, "me"), false);
});

test("a random default name avoids every name taken, and gets a number when all 100 are", () => {
  assert.equal(DEFAULT_AUTHORS.length, 100);
  assert.equal(new Set(DEFAULT_AUTHORS.map((a) => a.name)).size, 100);
  // All but one taken: that one, every time (no unlucky draw gives a number instead).
  const onlyFree = "Gentle Otter";
  for (let i = 0; i < 50; i++) {
    const a = freeRandomAuthor((name) => name !== onlyFree);
    assert.deepEqual(a, { name: onlyFree, emoji: "🦦" });
  }
  // All 100 taken (in any case): a default with a short number.
  const taken = new Set(DEFAULT_AUTHORS.map((a) => a.name.toLowerCase()));
  for (let i = 0; i < 50; i++) {
    const a = freeRandomAuthor((name) => taken.has(name.toLowerCase()));
    assert.match(a.name, /^[A-Z][a-z]+ [A-Z][a-z]+ \d{1,2}$/);
    assert.ok(!taken.has(a.name.toLowerCase()));
    assert.doesNotThrow(() => validateNickname(a.name));
  }
  // Everything taken: still a name, in bounded time.
  assert.match(freeRandomAuthor(() => true).name, /^[A-Z][a-z]+ [A-Z][a-z]+ \d{4}$/);
});

test("a stored identity whose name the rules now refuse is replaced by a fresh random one on load", async () => {
  const dir = mkdtempSync(join(tmpdir(), "via-names-"));
  const pubsub = await openPubSub({ dataDir: dir });
  try {
    const store = await IdentityStore.open(pubsub);
    await pubsub.publish(
      `identity.${IdentityStore.idFor("s1")}`,
      JSON.stringify({ name: "Wise\u3164Tiger", emoji: "🐯" }),
    );
    await pubsub.publish(`identity.${IdentityStore.idFor("s2")}`, JSON.stringify({ name: "Night Owl", emoji: "🦉" }));
    const replaced = await store.load("s1");
    assert.equal(replaced.stored, false);
    assert.ok(
      DEFAULT_AUTHORS.some((a) => a.name === replaced.name),
      replaced.name,
    );
    assert.deepEqual(await store.load("s2"), {
      id: IdentityStore.idFor("s2"),
      name: "Night Owl",
      emoji: "🦉",
      stored: true,
    });
  } finally {
    await pubsub.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
