// Reading a run's tables back from the JSON its --json option wrote (harness/cli.ts): every
// `{ header, rows }` in the file, named by where it stands. `npm run figures` prints them; tests check
// that they are the tables the tool printed, so the docs can take their figures from results files.
import { markdownTable } from "./stats.ts";

/** A table somewhere in a results file: `{ header, rows }` with every cell a string. */
export interface FoundTable {
  name: string;
  header: string[];
  rows: string[][];
}

function isTable(v: unknown): v is { header: string[]; rows: string[][] } {
  if (typeof v !== "object" || v === null) return false;
  const { header, rows } = v as { header?: unknown; rows?: unknown };
  return (
    Array.isArray(header) &&
    header.every((h) => typeof h === "string") &&
    Array.isArray(rows) &&
    rows.every((r) => Array.isArray(r) && r.every((c) => typeof c === "string"))
  );
}

/** Every table in `v`, depth first, in the order the file holds them, named by where it is. */
export function tablesIn(v: unknown, name = ""): FoundTable[] {
  if (isTable(v)) return [{ name, header: v.header, rows: v.rows }];
  if (typeof v !== "object" || v === null) return [];
  if (Array.isArray(v)) return v.flatMap((item, i) => tablesIn(item, `${name}[${i}]`));
  // An entry that says what it is (bench:chat's tables carry their scenario's title) names its tables.
  const own = (v as { title?: unknown }).title;
  return Object.entries(v).flatMap(([key, item]) =>
    tablesIn(item, typeof own === "string" ? own : name ? `${name}.${key}` : key),
  );
}

/** The Markdown of one results file: where and how it ran, then its tables. */
export function figuresOf(doc: { command?: string; machine?: unknown; at?: string }): string {
  const machine = doc.machine as { node?: string; cpu?: string; cores?: number } | undefined;
  const lines = [
    `command: ${doc.command ?? "unknown"}`,
    `run: ${doc.at ?? "unknown"}; node ${machine?.node ?? "?"}; ${machine?.cpu ?? "?"} × ${machine?.cores ?? "?"} cores`,
  ];
  for (const t of tablesIn(doc)) lines.push("", `${t.name}:`, "", markdownTable(t.header, t.rows));
  return `${lines.join("\n")}\n`;
}
