// How the benchmarks print their figures: one formatter per unit, so a figure reads the same in every
// table. A figure that is not a finite number (a run that measured nothing) prints as "n/a".

export function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

export function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1);
}

/** Milliseconds: two decimals below 10, one above. */
export function ms(v: number): string {
  return Number.isFinite(v) ? v.toFixed(v < 10 ? 2 : 1) : "n/a";
}

/** Milliseconds as seconds: two decimals below 10 s, one above. */
export function sec(v: number): string {
  return Number.isFinite(v) ? (v / 1000).toFixed(v < 10_000 ? 2 : 1) : "n/a";
}

export function pct(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(0)} %` : "n/a";
}

/** A fraction as a signed percentage: "+3.2 %". */
export function signedPct(fraction: number): string {
  return Number.isFinite(fraction) ? `${fraction >= 0 ? "+" : ""}${(fraction * 100).toFixed(1)} %` : "n/a";
}

/** A count with thousands separators. */
export function num(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: digits }) : "n/a";
}

/** a ÷ b as "1.23×". */
export function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0
    ? `${(a / b).toFixed(2)}×`
    : "n/a";
}
