// Unguessable identifiers. 16 random bytes = 128 bits, base64url without padding = 22 chars.
import { randomBytes } from "node:crypto";

const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

export function newId(): string {
  return randomBytes(16).toString("base64url");
}

/** True for strings shaped like newId()'s output; anything else is rejected before any lookup. */
export function isWellFormedId(value: unknown): value is string {
  return typeof value === "string" && ID_PATTERN.test(value);
}
