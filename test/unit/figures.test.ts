// Tables that tools print and write with --json come back, the same, from the JSON (npm run figures).
import assert from "node:assert/strict";
import { test } from "node:test";
import { figuresOf, tablesIn } from "../../harness/figures.ts";
import { Table } from "../../harness/stats.ts";

test("a table written with --json is printed again by figures exactly as the tool printed it", () => {
  const kills = new Table(
    ["engine", "lost"],
    [
      ["embedded", "0"],
      ["nats", "0"],
    ],
  );
  const final = new Table(["accepted", "acked"], [["10", "10"]]);
  const written = JSON.stringify({
    command: "npm run drill:crash -- --quick",
    machine: { node: "v20.0.0", cpu: "A CPU", cores: 2 },
    at: "2026-12-03T10:00:00.000Z",
    results: { pass: true, tables: { kills, final }, engines: [{ lost: 0 }] },
  });
  const figures = figuresOf(JSON.parse(written));
  assert.ok(figures.startsWith("command: npm run drill:crash -- --quick\nrun: 2026-12-03T10:00:00.000Z; node v20.0.0"));
  assert.ok(figures.includes(`results.tables.kills:\n\n${kills}`), figures);
  assert.ok(figures.includes(`results.tables.final:\n\n${final}`), figures);
});

test("figures names a table by the title of the entry that holds it, and skips what is not a table", () => {
  const found = tablesIn({
    tables: [{ title: "scenario a", table: { header: ["metric"], rows: [["p99"]], values: [1] } }],
    notTables: [
      { header: ["x"], rows: [[1]] },
      { header: "x", rows: [] },
    ],
  });
  assert.deepEqual(found, [{ name: "scenario a", header: ["metric"], rows: [["p99"]] }]);
});
