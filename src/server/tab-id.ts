// Tab ids the server issues and can verify without remembering them. A page load keeps nothing on the
// server, so the id itself must prove that this server issued it, to this browser session, recently:
//
//   base64url( nonce (12 bytes) | issued-at (4 bytes, Unix seconds) | HMAC-SHA256(secret, ...)[0..16) )
//
// The MAC covers the session id, the nonce and the issue time. An id the client invented, one copied
// from another session, or one older than `maxAgeMs` fails verification before anything is allocated.
// The secret must be the same on every instance and across restarts for open tabs to re-bootstrap
// there (see secret.ts).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const NONCE_BYTES = 12;
const TIME_BYTES = 4;
const MAC_BYTES = 16;
const ID_BYTES = NONCE_BYTES + TIME_BYTES + MAC_BYTES;
/** 32 bytes in base64url without padding. */
export const TAB_ID_CHARS = Math.ceil((ID_BYTES * 4) / 3);
const TAB_ID_PATTERN = new RegExp(`^[A-Za-z0-9_-]{${TAB_ID_CHARS}}$`);

export type TabIdVerdict = { ok: true; issuedAt: number } | { ok: false; status: 400 | 403; reason: string };

export class TabIds {
  constructor(
    private readonly secret: Buffer,
    /** How long an id can start a fresh context after it was issued (a live context is resumed regardless). */
    readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (secret.length < 32) throw new RangeError("the tab id secret needs at least 32 bytes");
  }

  /** A new id for a tab of `sessionId`. */
  issue(sessionId: string): string {
    const raw = Buffer.allocUnsafe(ID_BYTES);
    randomBytes(NONCE_BYTES).copy(raw, 0);
    raw.writeUInt32BE(Math.floor(this.now() / 1000) >>> 0, NONCE_BYTES);
    this.mac(sessionId, raw).copy(raw, NONCE_BYTES + TIME_BYTES);
    return raw.toString("base64url");
  }

  /**
   * Whether `id` was issued by this secret to `sessionId`. With `fresh`, also that it is younger than
   * maxAgeMs (asked when the id would start a new context, not when it resumes a live one).
   */
  verify(id: unknown, sessionId: string, opts: { fresh: boolean }): TabIdVerdict {
    if (!isWellFormedTabId(id)) return { ok: false, status: 400, reason: "missing or malformed tab id" };
    const raw = Buffer.from(id, "base64url");
    // 43 characters carry 258 bits for 256: four spellings decode to the same bytes. Only the one we
    // wrote is the id (tabs are looked up by the string), so another spelling is not ours.
    if (raw.toString("base64url") !== id) {
      return { ok: false, status: 403, reason: "tab id was not issued by this server to this session" };
    }
    const expected = this.mac(sessionId, raw);
    const given = raw.subarray(NONCE_BYTES + TIME_BYTES);
    if (!timingSafeEqual(expected, given)) {
      return { ok: false, status: 403, reason: "tab id was not issued by this server to this session" };
    }
    const issuedAt = raw.readUInt32BE(NONCE_BYTES) * 1000;
    if (opts.fresh && this.now() - issuedAt > this.maxAgeMs) {
      return { ok: false, status: 403, reason: "tab id expired: reload the page" };
    }
    return { ok: true, issuedAt };
  }

  private mac(sessionId: string, raw: Buffer): Buffer {
    return createHmac("sha256", this.secret)
      .update(sessionId)
      .update("\0")
      .update(raw.subarray(0, NONCE_BYTES + TIME_BYTES))
      .digest()
      .subarray(0, MAC_BYTES);
  }
}

/** Shape only: 43 base64url characters. Checked before any MAC work. */
export function isWellFormedTabId(value: unknown): value is string {
  return typeof value === "string" && TAB_ID_PATTERN.test(value);
}
