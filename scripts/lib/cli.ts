// Flag parsing shared by the bench, drill and demo scripts.

/** An integer flag within [min, max]; a bad value exits with status 2 and says why. */
export function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return n;
}
