// What every benchmark run has around its measurements: log lines while it runs, the load average
// it prints with its figures, and a watchdog that ends a run that hangs.
import { loadavg } from "node:os";

/** The 1/5/15-minute load averages: other work on the machine skews every figure, so they are printed with them. */
export function loadText(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");
}

/** A log line of a run in progress. */
export function log(line: string): void {
  process.stdout.write(`  · ${line}\n`);
}

/** Ends the process if the benchmark is still running after `ms`: the run must end by itself, whatever happens. */
export function watchdog(name: string, ms: number, unit: "s" | "min" = "s"): () => void {
  const timer = setTimeout(() => {
    const after = unit === "min" ? `${ms / 60_000} min` : `${ms / 1000} s`;
    process.stderr.write(`${name}: still running after ${after}, giving up\n`);
    process.exit(1);
  }, ms);
  return () => clearTimeout(timer);
}
