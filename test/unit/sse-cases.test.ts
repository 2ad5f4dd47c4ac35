// Conformance: our encoder against the official Datastar v1 SDK test vectors (a copy with their MIT
// license in test/fixtures/datastar-sse-cases, see its README.md). Compared under the original suite's lenient
// rules: non-data lines in order; data lines grouped by first word, groups in any order, lines within a
// group in order; HTML attribute order inside `elements` may differ.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type EventMeta,
  executeScript,
  type PatchMode,
  type PatchNamespace,
  patchElements,
  patchSignals,
} from "../../src/server/sse/encoder.ts";

const EXPECTED_CASES = 20;
const casesDir = fileURLToPath(new URL("../fixtures/datastar-sse-cases/", import.meta.url));

interface CaseEvent {
  type: string;
  elements?: string;
  selector?: string;
  mode?: PatchMode;
  useViewTransition?: boolean;
  namespace?: PatchNamespace;
  signals?: Record<string, unknown>;
  "signals-raw"?: string;
  onlyIfMissing?: boolean;
  paths?: string[];
  script?: string;
  attributes?: Record<string, string> | string[];
  autoRemove?: boolean;
  eventId?: string;
  retryDuration?: number;
}

function meta(e: CaseEvent): EventMeta {
  return { eventId: e.eventId, retryDuration: e.retryDuration };
}

/** `["a", "b.c"]` → `{"a":null,"b":{"c":null}}`: removing signals is patching them to null. */
function pathsToNulls(paths: string[]): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const path of paths) {
    const parts = path.split(".");
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (typeof next === "object" && next !== null) {
        node = next as Record<string, unknown>;
      } else {
        const created: Record<string, unknown> = {};
        node[part] = created;
        node = created;
      }
    }
    node[parts.at(-1)!] = null;
  }
  return root;
}

function attributesOf(e: CaseEvent): Record<string, string> | undefined {
  if (e.attributes === undefined || !Array.isArray(e.attributes)) return e.attributes;
  // Some SDK versions give attributes as `key="value"` strings.
  const out: Record<string, string> = {};
  for (const attr of e.attributes) {
    const m = /^([^=\s]+)(?:="(.*)")?$/.exec(attr);
    assert.ok(m, `unparseable attribute ${attr}`);
    out[m[1]!] = m[2] ?? "";
  }
  return out;
}

function encode(e: CaseEvent): string {
  switch (e.type) {
    case "patchElements":
      return patchElements(e.elements, {
        selector: e.selector,
        mode: e.mode,
        useViewTransition: e.useViewTransition,
        namespace: e.namespace,
        ...meta(e),
      });
    case "removeElements":
      return patchElements(e.elements, {
        selector: e.selector,
        mode: "remove",
        useViewTransition: e.useViewTransition,
        ...meta(e),
      });
    case "patchSignals":
      return patchSignals(e["signals-raw"] ?? e.signals ?? {}, { onlyIfMissing: e.onlyIfMissing, ...meta(e) });
    case "removeSignals":
      return patchSignals(pathsToNulls(e.paths ?? []), meta(e));
    case "executeScript":
      return executeScript(e.script ?? "", { attributes: attributesOf(e), autoRemove: e.autoRemove, ...meta(e) });
    default:
      throw new Error(`unknown event type in case input: ${e.type}`);
  }
}

// --- lenient comparison -------------------------------------------------------------------------

const TAG = /<([A-Za-z][^\s/>]*)((?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*(\/?)>/g;
const ATTR = /([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?/g;

/** Rewrites every start tag with its attributes sorted, so attribute order does not matter. */
function sortAttributes(html: string): string {
  return html.replace(TAG, (_m, name: string, attrs: string, selfClose: string) => {
    const list = [...attrs.matchAll(ATTR)].map((a) => (a[2] === undefined ? a[1]! : `${a[1]}=${a[2]}`));
    list.sort();
    return `<${name}${list.map((a) => ` ${a}`).join("")}${selfClose}>`;
  });
}

interface ParsedEvent {
  fields: string[];
  data: Map<string, string[]>;
}

function parseStream(text: string): ParsedEvent[] {
  const events: ParsedEvent[] = [];
  let current: ParsedEvent | undefined;
  for (const line of text.split("\n")) {
    if (line === "") {
      if (current) events.push(current);
      current = undefined;
      continue;
    }
    current ??= { fields: [], data: new Map() };
    if (line.startsWith("data:")) {
      const value = line.slice(line.startsWith("data: ") ? 6 : 5);
      const space = value.indexOf(" ");
      const key = space < 0 ? value : value.slice(0, space);
      const rest = space < 0 ? "" : value.slice(space + 1);
      const group = current.data.get(key) ?? [];
      group.push(rest);
      current.data.set(key, group);
    } else {
      current.fields.push(line);
    }
  }
  if (current) events.push(current);
  return events;
}

function normalise(e: ParsedEvent): { fields: string[]; data: Record<string, string[]> } {
  const data: Record<string, string[]> = {};
  for (const [key, lines] of e.data) {
    // Attributes may be reordered, and a tag may span lines, so sort on the joined group.
    data[key] = key === "elements" ? sortAttributes(lines.join("\n")).split("\n") : lines;
  }
  return { fields: e.fields, data };
}

function assertEquivalent(actual: string, expected: string, name: string): void {
  const a = parseStream(actual).map(normalise);
  const b = parseStream(expected).map(normalise);
  assert.ok(b.length > 0, `${name}: expected output has no events`);
  assert.equal(a.length, b.length, `${name}: event count\n--- actual\n${actual}\n--- expected\n${expected}`);
  for (let i = 0; i < b.length; i++) {
    assert.deepEqual(a[i], b[i], `${name}: event ${i}\n--- actual\n${actual}\n--- expected\n${expected}`);
  }
}

// --- the cases ----------------------------------------------------------------------------------

function listCases(): Array<{ name: string; dir: string }> {
  const out: Array<{ name: string; dir: string }> = [];
  for (const group of ["get-cases", "post-cases"]) {
    const groupDir = `${casesDir}${group}/`;
    assert.ok(existsSync(groupDir), `missing ${groupDir}`);
    for (const name of readdirSync(groupDir).sort()) out.push({ name: `${group}/${name}`, dir: `${groupDir}${name}/` });
  }
  return out;
}

const haveCases = existsSync(casesDir);

test(`encoder reproduces all ${EXPECTED_CASES} official Datastar v1 SSE cases`, async (t) => {
  assert.ok(haveCases, `Datastar SSE cases folder missing at ${casesDir}`);
  const cases = listCases();
  let compared = 0;
  for (const c of cases) {
    await t.test(c.name, () => {
      const input = JSON.parse(readFileSync(`${c.dir}input.json`, "utf8")) as { events: CaseEvent[] };
      const expected = readFileSync(`${c.dir}output.txt`, "utf8");
      assert.ok(Array.isArray(input.events) && input.events.length > 0, `${c.name}: no events in input`);
      const actual = input.events.map(encode).join("");
      assertEquivalent(actual, expected, c.name);
      compared++;
    });
  }
  assert.equal(compared, EXPECTED_CASES, `compared ${compared} of ${EXPECTED_CASES} SSE cases`);
  t.diagnostic(`${compared} of ${EXPECTED_CASES} SSE cases`);
});

// The comparator must be lenient only where the original suite is, or the conformance test proves little.
test("the case comparator allows reordered data groups and attributes but nothing else", () => {
  const base =
    'event: e\nid: 1\ndata: selector body\ndata: mode append\ndata: elements <a x="1" y="2">\ndata: elements b</a>\n\n';
  const reordered =
    'event: e\nid: 1\ndata: mode append\ndata: elements <a y="2" x="1">\ndata: selector body\ndata: elements b</a>\n\n';
  assert.doesNotThrow(() => assertEquivalent(reordered, base, "reordered"));
  const swappedLines =
    'event: e\nid: 1\ndata: selector body\ndata: mode append\ndata: elements b</a>\ndata: elements <a x="1" y="2">\n\n';
  assert.throws(() => assertEquivalent(swappedLines, base, "swapped"));
  const swappedFields =
    'id: 1\nevent: e\ndata: selector body\ndata: mode append\ndata: elements <a x="1" y="2">\ndata: elements b</a>\n\n';
  assert.throws(() => assertEquivalent(swappedFields, base, "fields"));
  assert.throws(() => assertEquivalent("event: e\ndata: selector body\n\n", base, "missing"));
  assert.throws(() => assertEquivalent(`${base}${base}`, base, "extra event"));
  assert.throws(() => assertEquivalent(base.replace('y="2"', 'y="3"'), base, "attribute value"));
});
