// Stream config validation and defaults, JetStream's rules (docs/reference/nats-facts.md §6). Engine-neutral:
// both engines check configs through it (via contract.ts), so they refuse the same configs with the same
// error and message.
import { StreamConfigError, SubjectError } from "./errors.ts";
import { parsePattern } from "./subjects.ts";
import type { ResolvedStreamConfig, StreamConfig } from "./types.ts";

/** One token of [A-Za-z0-9_-], like a JetStream stream name, capped so it stays a sane identifier. */
export const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** JetStream's default duplicate window (2 min). */
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;

function limit(config: StreamConfig, key: keyof StreamConfig): number {
  const v = config[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new StreamConfigError(
      `stream ${config.name}: ${key} must be a non-negative integer (0 = unlimited), got ${String(v)}`,
    );
  }
  return v;
}

/** Validates a config and fills every default in. Throws StreamConfigError. */
export function resolveStreamConfig(config: StreamConfig): ResolvedStreamConfig {
  if (typeof config !== "object" || config === null) throw new StreamConfigError("stream config must be an object");
  const { name } = config;
  if (typeof name !== "string" || !STREAM_NAME.test(name)) {
    throw new StreamConfigError(`stream name ${JSON.stringify(name)} must be 1-64 characters of [A-Za-z0-9_-]`);
  }
  if (!Array.isArray(config.subjects) || config.subjects.length === 0) {
    throw new StreamConfigError(`stream ${name}: subjects must be a non-empty array`);
  }
  const seen = new Set<string>();
  for (const s of config.subjects) {
    try {
      parsePattern(s);
    } catch (err) {
      if (err instanceof SubjectError) throw new StreamConfigError(`stream ${name}: ${err.message}`);
      throw err;
    }
    if (seen.has(s)) throw new StreamConfigError(`stream ${name}: duplicate subject ${JSON.stringify(s)}`);
    seen.add(s);
  }
  const maxAge = limit(config, "maxAge");
  const discard = config.discard ?? "old";
  if (discard !== "old" && discard !== "new") {
    throw new StreamConfigError(`stream ${name}: discard must be "old" or "new", got ${JSON.stringify(discard)}`);
  }
  let duplicateWindow = limit(config, "duplicateWindow");
  if (duplicateWindow === 0) {
    duplicateWindow = maxAge > 0 ? Math.min(DEFAULT_DUPLICATE_WINDOW_MS, maxAge) : DEFAULT_DUPLICATE_WINDOW_MS;
  } else if (maxAge > 0 && duplicateWindow > maxAge) {
    throw new StreamConfigError(
      `stream ${name}: duplicateWindow (${duplicateWindow} ms) must not be larger than maxAge (${maxAge} ms)`,
    );
  }
  const replicas = config.replicas ?? 1;
  if (!Number.isSafeInteger(replicas) || replicas < 1) {
    throw new StreamConfigError(`stream ${name}: replicas must be a positive integer, got ${String(replicas)}`);
  }
  return {
    name,
    subjects: [...config.subjects],
    maxMsgs: limit(config, "maxMsgs"),
    maxMsgsPerSubject: limit(config, "maxMsgsPerSubject"),
    maxAge,
    maxBytes: limit(config, "maxBytes"),
    maxMsgSize: limit(config, "maxMsgSize"),
    discard,
    duplicateWindow,
    replicas,
  };
}
