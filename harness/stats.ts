// The statistics and tables that drills and benchmarks report: one definition of a percentile and
// a median, so two tools' figures mean the same thing.

type Numbers = ArrayLike<number>;

/** Nearest-rank percentile of an ascending array; `p` is a fraction (0.99 for p99). NaN when empty. */
export function percentile(sorted: Numbers, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** Ascending copy, for `percentile`. */
export function ascending(xs: Iterable<number>): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** The median (the mean of the middle two for an even count); NaN when empty. */
export function median(xs: Numbers): number {
  const s = ascending(Array.from(xs));
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The values that are known (a run that did not finish leaves undefined), ascending. */
export function known(xs: ReadonlyArray<number | undefined>): number[] {
  return ascending(xs.filter((x): x is number => x !== undefined && !Number.isNaN(x)));
}

/** "median 65 ms, max 1435 ms (200)" over the known values, "—" when there are none. */
export function medianMax(xs: ReadonlyArray<number | undefined>, unit = "ms"): string {
  const v = known(xs);
  if (v.length === 0) return "—";
  return `median ${Math.round(median(v))} ${unit}, max ${Math.round(v.at(-1)!)} ${unit} (${v.length})`;
}

/** A Markdown table; columns are padded so it also reads as plain text. */
export function markdownTable(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => `| ${widths.map((w, i) => (cells[i] ?? "").padEnd(w)).join(" | ")} |`;
  return [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(line)].join("\n");
}

/** "12-340 ms": the rounded least and greatest of `xs` (then the unit, if any); "-" when there are none. */
export function span(xs: readonly number[], unit = ""): string {
  if (xs.length === 0) return "-";
  return `${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))}${unit ? ` ${unit}` : ""}`;
}

/**
 * A table a tool prints and also writes with its --json results: printed (in a template or by
 * console.log) it is the Markdown table; as JSON it is `{ header, rows }`, which `npm run figures`
 * prints again, so a table in the docs can come from a run's JSON instead of its terminal.
 */
export class Table {
  constructor(
    readonly header: string[],
    readonly rows: string[][],
  ) {}

  toString(): string {
    return markdownTable(this.header, this.rows);
  }

  toJSON(): { header: string[]; rows: string[][] } {
    return { header: this.header, rows: this.rows };
  }
}
