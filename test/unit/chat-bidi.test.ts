// stripBidiControls (apps/chat/messages.ts): the chat's message texts and names lose the bidi
// controls that could make them display as something else, and keep the ones that are closed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { stripBidiControls } from "../../apps/chat/messages.ts";

const LRE = "\u202A";
const RLE = "\u202B";
const PDF = "\u202C";
const LRO = "\u202D";
const RLO = "\u202E";
const LRI = "\u2066";
const RLI = "\u2067";
const FSI = "\u2068";
const PDI = "\u2069";

test("bidi: a right-to-left override is removed with the PDF that closes it", () => {
  // Shown as "transfer exe.png" with the override.
  assert.equal(stripBidiControls(`transfer ${RLO}gnp.exe${PDF}`), "transfer gnp.exe");
  assert.equal(stripBidiControls(`transfer ${RLO}gnp.exe`), "transfer gnp.exe");
  assert.equal(stripBidiControls(`a ${LRO}b${PDF} c`), "a b c");
  assert.equal(stripBidiControls(`${RLO}${RLO}x${PDF}`), "x");
});

test("bidi: embeddings and isolates closed by their PDF or PDI stay", () => {
  for (const text of [
    `he said ${RLI}שלום${PDI} today`,
    `${FSI}مرحبا${PDI} and ${LRI}hello${PDI}`,
    `${RLE}abc${PDF}`,
    `${LRE}a ${RLE}b${PDF} c${PDF}`,
    `${RLI}a ${LRE}b${PDF} c${PDI}`,
  ]) {
    assert.equal(stripBidiControls(text), text, JSON.stringify(text));
  }
});

test("bidi: unpaired embedding and isolate controls are removed, paired ones kept", () => {
  assert.equal(stripBidiControls(`x ${RLE}abc`), "x abc", "an embedding never closed");
  assert.equal(stripBidiControls(`x ${RLI}abc`), "x abc", "an isolate never closed");
  assert.equal(stripBidiControls(`abc${PDF} x`), "abc x", "a PDF that closes nothing");
  assert.equal(stripBidiControls(`abc${PDI} x`), "abc x", "a PDI that closes nothing");
  // A PDF does not close an embedding across an open isolate; the PDI closes the isolate.
  assert.equal(stripBidiControls(`${RLE}a ${LRI}b${PDF}${PDI}${PDF}`), `${RLE}a ${LRI}b${PDI}${PDF}`);
  // A PDI closes the embeddings opened inside its isolate: they had no PDF of their own.
  assert.equal(stripBidiControls(`${RLI}a ${RLE}b${PDI} c`), `${RLI}a b${PDI} c`);
  // An override's PDF is removed with it; the embedding around it keeps its own PDF.
  assert.equal(stripBidiControls(`${LRE}x ${RLO}y${PDF} z${PDF}`), `${LRE}x y z${PDF}`);
  assert.equal(stripBidiControls(`${PDF}${PDI}${LRE}${RLI}`), "");
});

test("bidi: a paragraph end closes nothing, so what is open before it is removed", () => {
  assert.equal(stripBidiControls(`${RLI}a\nb${PDI}`), "a\nb");
  assert.equal(stripBidiControls(`${RLE}a\u2029${PDF}b`), "a\u2029b");
  assert.equal(stripBidiControls(`${RLI}a${PDI}\n${LRE}b${PDF}`), `${RLI}a${PDI}\n${LRE}b${PDF}`);
});

test("bidi: text without bidi controls is returned as it is, marks included", () => {
  const text = "hello \u200Fשלום\u200E مرحبا 🐯";
  assert.equal(stripBidiControls(text), text);
  assert.equal(stripBidiControls(""), "");
});
