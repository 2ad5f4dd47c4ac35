// SQLite stream store with JetStream's limit semantics (docs/reference/nats-facts.md §6).
//
// Layout: a `streams` meta table (config, epoch, last_seq) plus, per stream, a message table
// `m_<id>` keyed by seq with an index on (subject, seq), and one `dedupe` table for msg ids.
// Tables are named by the stream's AUTOINCREMENT id, not its name: SQLite identifiers are
// case-insensitive ("Chat" and "chat" would collide), and a deleted-then-recreated stream gets a fresh
// table, so nothing of the old epoch can leak into the new one.
//
// Counters (messages, bytes, per-subject counts, first/last seq) live in memory, loaded at open and
// updated with every change inside the same transaction. If a transaction fails they are reloaded from
// the database, so memory never drifts from disk.
//
// Byte accounting: a message counts UTF-8(subject) + Σ UTF-8(header key) + UTF-8(header value) +
// payload bytes. JetStream adds a fixed per-message overhead on top (16 B memory store, 30 B file store),
// so the same maxBytes holds a few more messages here than in NATS.
//
// Why one file of about 500 lines: it is the one owner of the SQLite schema and of the in-memory counters
// that mirror it. Every write (append with its limit checks and evictions, expiry, purge on a tightened
// config, delete) must update rows and counters in the same transaction, and every read relies on the
// same prepared statements; split by operation, each part would reach into the same tables, statements
// and counters, and "memory never drifts from disk" would no longer be visible in one place.
import type Database from "better-sqlite3";
import { subjectsOverlapError } from "../contract.ts";
import { StreamLimitError, StreamNotFoundError, WrongLastSequenceError } from "../errors.ts";
import { SubjectRouter } from "../router.ts";
import { patternsOverlap } from "../subjects.ts";
import type { Headers, ResolvedStreamConfig, StreamInfo, StreamMessage } from "../types.ts";

type DB = Database.Database;
type Stmt = Database.Statement;

const SCHEMA_VERSION = 1;

interface MessageRow {
  seq: number;
  subject: string;
  time: number;
  headers: string | null;
  data: Buffer;
}

interface HeadRow {
  seq: number;
  subject: string;
  size: number;
  time: number;
}

interface StreamRow {
  id: number;
  name: string;
  config: string;
  epoch: string;
  last_seq: number;
  last_time: number;
}

interface StreamStatements {
  insert: Stmt;
  head: Stmt;
  first: Stmt;
  deleteUpTo: Stmt;
  deleteOne: Stmt;
  subjectHead: Stmt;
  subjectLast: Stmt;
  readFrom: Stmt;
  readSubjectFrom: Stmt;
  readSubjectLast: Stmt;
  readSubjectBefore: Stmt;
  stats: Stmt;
  bounds: Stmt;
}

export interface StreamState {
  readonly id: number;
  readonly name: string;
  config: ResolvedStreamConfig;
  epoch: string;
  /** Last seq ever assigned; never goes back. */
  lastSeq: number;
  /** Time of the last stored message; new times never go below it, so seq order is time order. */
  lastTime: number;
  /** First stored seq, lastSeq + 1 when empty. */
  firstSeq: number;
  /** Time of the message at firstSeq (0 when empty): drives max-age expiry. */
  firstTime: number;
  messages: number;
  bytes: number;
  subjects: Map<string, number>;
  /** Set once the stream is deleted, so readers holding this object stop. */
  deleted: boolean;
  dirty: boolean;
  readonly stmt: StreamStatements;
}

/** A message about to be appended, already validated by the engine. */
export interface Append {
  subject: string;
  data: Uint8Array;
  headers: Headers | undefined;
  /** UTF-8 bytes of header keys and values. */
  headerBytes: number;
  msgId?: string | undefined;
  expectLastSubjectSeq?: number | undefined;
}

export interface AppendResult {
  seq: number;
  time: number;
  duplicate: boolean;
}

const table = (id: number) => `m_${id}`;

export function toMessage(stream: string, row: MessageRow): StreamMessage {
  return {
    stream,
    seq: row.seq,
    time: row.time,
    subject: row.subject,
    // A plain Uint8Array view, not the Buffer subclass: callers compare and serialise data the same
    // way whether it came live or from disk.
    data: new Uint8Array(row.data.buffer, row.data.byteOffset, row.data.byteLength),
    headers: row.headers === null ? {} : (JSON.parse(row.headers) as Headers),
  };
}

export class Store {
  readonly #db: DB;
  readonly #byName = new Map<string, StreamState>();
  #router = new SubjectRouter<StreamState>();
  readonly #runTx: (fn: () => unknown) => unknown;
  readonly #dedupeGet: Stmt;
  readonly #dedupePut: Stmt;
  readonly #dedupeSweep: Stmt;
  readonly #metaUpdate: Stmt;

  constructor(db: DB) {
    this.#db = db;
    const version = db.pragma("user_version", { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `data dir was written by a newer version (schema ${version}, this build knows ${SCHEMA_VERSION})`,
      );
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS streams (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        config TEXT NOT NULL,
        epoch TEXT NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        last_time INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE IF NOT EXISTS dedupe (
        stream_id INTEGER NOT NULL,
        msg_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time INTEGER NOT NULL,
        PRIMARY KEY (stream_id, msg_id)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS dedupe_time ON dedupe (stream_id, time);
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
    this.#dedupeGet = db.prepare("SELECT seq, time FROM dedupe WHERE stream_id = ? AND msg_id = ?");
    this.#dedupePut = db.prepare("INSERT OR REPLACE INTO dedupe (stream_id, msg_id, seq, time) VALUES (?, ?, ?, ?)");
    this.#dedupeSweep = db.prepare("DELETE FROM dedupe WHERE stream_id = ? AND time <= ?");
    this.#metaUpdate = db.prepare("UPDATE streams SET last_seq = ?, last_time = ? WHERE id = ?");
    const tx = db.transaction((fn: () => unknown) => {
      const result = fn();
      for (const st of this.#byName.values()) {
        if (!st.dirty) continue;
        this.#metaUpdate.run(st.lastSeq, st.lastTime, st.id);
        st.dirty = false;
      }
      return result;
    });
    this.#runTx = (fn) => tx(fn);
    this.reload();
  }

  /**
   * Runs fn in one write transaction; last_seq of every touched stream is written in the same commit.
   * If it throws, nothing is committed and the in-memory counters are reloaded from disk.
   */
  tx<R>(fn: () => R): R {
    try {
      return this.#runTx(fn) as R;
    } catch (err) {
      this.reload();
      throw err;
    }
  }

  /** (Re)builds every stream's in-memory state from disk, keeping the objects of streams that still exist. */
  reload(): void {
    const rows = this.#db
      .prepare("SELECT id, name, config, epoch, last_seq, last_time FROM streams")
      .all() as StreamRow[];
    const live = new Set<string>();
    for (const row of rows) {
      live.add(row.name);
      let st = this.#byName.get(row.name);
      if (st && st.id !== row.id) {
        st.deleted = true;
        st = undefined;
      }
      if (!st) {
        st = this.#newState(row.id, row.name, JSON.parse(row.config) as ResolvedStreamConfig, row.epoch);
        this.#byName.set(row.name, st);
      }
      st.config = JSON.parse(row.config) as ResolvedStreamConfig;
      st.epoch = row.epoch;
      st.dirty = false;
      st.subjects.clear();
      st.messages = 0;
      st.bytes = 0;
      // One full scan at open: fine for chat-sized streams; persisting counters would avoid it.
      for (const s of st.stmt.stats.all() as { subject: string; n: number; b: number }[]) {
        st.subjects.set(s.subject, s.n);
        st.messages += s.n;
        st.bytes += s.b;
      }
      const b = st.stmt.bounds.get() as { maxSeq: number | null; maxTime: number | null };
      st.lastSeq = Math.max(row.last_seq, b.maxSeq ?? 0);
      st.lastTime = Math.max(row.last_time, b.maxTime ?? 0);
      this.#refreshFirst(st);
    }
    for (const [name, st] of this.#byName) {
      if (!live.has(name)) {
        st.deleted = true;
        this.#byName.delete(name);
      }
    }
    this.#rebuildRouter();
  }

  #newState(id: number, name: string, config: ResolvedStreamConfig, epoch: string): StreamState {
    const t = table(id);
    const cols = "seq, subject, time, headers, data";
    const p = (sql: string) => this.#db.prepare(sql);
    return {
      id,
      name,
      config,
      epoch,
      lastSeq: 0,
      lastTime: 0,
      firstSeq: 1,
      firstTime: 0,
      messages: 0,
      bytes: 0,
      subjects: new Map(),
      deleted: false,
      dirty: false,
      stmt: {
        insert: p(`INSERT INTO ${t} (seq, subject, time, headers, data, size) VALUES (?, ?, ?, ?, ?, ?)`),
        head: p(`SELECT seq, subject, size, time FROM ${t} ORDER BY seq LIMIT ?`),
        first: p(`SELECT seq, time FROM ${t} ORDER BY seq LIMIT 1`),
        deleteUpTo: p(`DELETE FROM ${t} WHERE seq <= ?`),
        deleteOne: p(`DELETE FROM ${t} WHERE seq = ?`),
        subjectHead: p(`SELECT seq, size FROM ${t} WHERE subject = ? ORDER BY seq LIMIT ?`),
        subjectLast: p(`SELECT seq FROM ${t} WHERE subject = ? ORDER BY seq DESC LIMIT 1`),
        readFrom: p(`SELECT ${cols} FROM ${t} WHERE seq >= ? ORDER BY seq LIMIT ?`),
        readSubjectFrom: p(`SELECT ${cols} FROM ${t} WHERE subject = ? AND seq >= ? ORDER BY seq LIMIT ?`),
        readSubjectLast: p(`SELECT ${cols} FROM ${t} WHERE subject = ? ORDER BY seq DESC LIMIT ?`),
        readSubjectBefore: p(`SELECT ${cols} FROM ${t} WHERE subject = ? AND seq < ? ORDER BY seq DESC LIMIT ?`),
        stats: p(`SELECT subject, COUNT(*) AS n, SUM(size) AS b FROM ${t} GROUP BY subject`),
        bounds: p(`SELECT MAX(seq) AS maxSeq, MAX(time) AS maxTime FROM ${t}`),
      },
    };
  }

  #rebuildRouter(): void {
    this.#router = new SubjectRouter<StreamState>();
    for (const st of this.#byName.values()) for (const s of st.config.subjects) this.#router.add(s, st);
  }

  get(name: string): StreamState | undefined {
    return this.#byName.get(name);
  }

  require(name: string): StreamState {
    const st = this.#byName.get(name);
    if (!st) throw new StreamNotFoundError(name);
    return st;
  }

  all(): IterableIterator<StreamState> {
    return this.#byName.values();
  }

  /** The stream capturing a literal subject (streams never overlap, so at most one). */
  streamFor(subject: string): StreamState | undefined {
    return this.#router.match(subject)[0];
  }

  /** Streams with at least one subject some message of the pattern could be stored under. */
  streamsOverlapping(pattern: string): StreamState[] {
    const out: StreamState[] = [];
    for (const st of this.#byName.values()) {
      if (st.config.subjects.some((s) => patternsOverlap(s, pattern))) out.push(st);
    }
    return out;
  }

  /** Creates a stream or updates its config; tightened limits apply at once. Call inside tx(). */
  ensure(config: ResolvedStreamConfig, epoch: string, now: number): { state: StreamState; created: boolean } {
    for (const other of this.#byName.values()) {
      if (other.name === config.name) continue;
      for (const a of config.subjects) {
        for (const b of other.config.subjects) {
          if (patternsOverlap(a, b)) throw subjectsOverlapError(config.name, a, b, other.name);
        }
      }
    }
    let st = this.#byName.get(config.name);
    const created = !st;
    if (!st) {
      const info = this.#db
        .prepare("INSERT INTO streams (name, config, epoch) VALUES (?, ?, ?)")
        .run(config.name, JSON.stringify(config), epoch);
      const id = Number(info.lastInsertRowid);
      this.#db.exec(`
        CREATE TABLE ${table(id)} (
          seq INTEGER PRIMARY KEY,
          subject TEXT NOT NULL,
          time INTEGER NOT NULL,
          headers TEXT,
          data BLOB NOT NULL,
          size INTEGER NOT NULL
        );
        CREATE INDEX ${table(id)}_subject ON ${table(id)} (subject, seq);
      `);
      st = this.#newState(id, config.name, config, epoch);
      this.#byName.set(config.name, st);
    } else {
      this.#db.prepare("UPDATE streams SET config = ? WHERE id = ?").run(JSON.stringify(config), st.id);
      st.config = config;
      this.#enforce(st, undefined);
      this.expire(st, now);
    }
    this.#rebuildRouter();
    return { state: st, created };
  }

  /** Drops a stream, its messages and its dedupe ids. Call inside tx(). */
  delete(name: string): StreamState {
    const st = this.require(name);
    this.#db.exec(`DROP TABLE ${table(st.id)}`);
    this.#db.prepare("DELETE FROM dedupe WHERE stream_id = ?").run(st.id);
    this.#db.prepare("DELETE FROM streams WHERE id = ?").run(st.id);
    this.#byName.delete(name);
    st.deleted = true;
    this.#rebuildRouter();
    return st;
  }

  /**
   * Appends one message under the stream's limits. Rejections (limits with discard "new", max message
   * size, expected last subject seq) throw before anything is written, so a caller batching several
   * appends in one transaction can catch them per message. Call inside tx().
   */
  append(st: StreamState, m: Append, now: number): AppendResult {
    const c = st.config;
    this.expire(st, now); // expired messages must not count against the limits below
    if (c.maxMsgSize > 0 && m.data.byteLength > c.maxMsgSize) throw new StreamLimitError(st.name, "maxMsgSize");

    // Dedupe comes first, as in JetStream: a retried publish gets its original ack back even if the
    // stream is now full or the subject has moved on.
    if (m.msgId !== undefined) {
      const hit = this.#dedupeGet.get(st.id, m.msgId) as { seq: number; time: number } | undefined;
      if (hit && hit.time > now - c.duplicateWindow) return { seq: hit.seq, time: hit.time, duplicate: true };
    }

    if (m.expectLastSubjectSeq !== undefined) {
      const actual = st.subjects.has(m.subject)
        ? ((st.stmt.subjectLast.get(m.subject) as { seq: number } | undefined)?.seq ?? 0)
        : 0;
      if (actual !== m.expectLastSubjectSeq)
        throw new WrongLastSequenceError(m.subject, m.expectLastSubjectSeq, actual);
    }

    const size = Buffer.byteLength(m.subject, "utf8") + m.headerBytes + m.data.byteLength;
    // A message larger than the whole stream can never be stored, whatever the discard policy.
    if (c.maxBytes > 0 && size > c.maxBytes) throw new StreamLimitError(st.name, "maxBytes");
    if (c.discard === "new") {
      if (c.maxMsgs > 0 && st.messages >= c.maxMsgs) throw new StreamLimitError(st.name, "maxMsgs");
      if (c.maxMsgsPerSubject > 0 && (st.subjects.get(m.subject) ?? 0) >= c.maxMsgsPerSubject) {
        throw new StreamLimitError(st.name, "maxMsgsPerSubject");
      }
      // Reject, never evict: nats-server 2.9.10 acks and evicts here (nats-server#4771); we do not copy that.
      if (c.maxBytes > 0 && st.bytes + size > c.maxBytes) throw new StreamLimitError(st.name, "maxBytes");
    }

    const seq = st.lastSeq + 1;
    const time = Math.max(now, st.lastTime);
    const headers = m.headers && Object.keys(m.headers).length > 0 ? JSON.stringify(m.headers) : null;
    st.stmt.insert.run(seq, m.subject, time, headers, m.data, size);
    st.lastSeq = seq;
    st.lastTime = time;
    st.dirty = true;
    if (st.messages === 0) {
      st.firstSeq = seq;
      st.firstTime = time;
    }
    st.messages++;
    st.bytes += size;
    st.subjects.set(m.subject, (st.subjects.get(m.subject) ?? 0) + 1);
    if (m.msgId !== undefined) this.#dedupePut.run(st.id, m.msgId, seq, time);

    this.#enforce(st, m.subject);
    return { seq, time, duplicate: false };
  }

  /** Evicts what is over the limits (discard-old behaviour; also after a config update). */
  #enforce(st: StreamState, onlySubject: string | undefined): void {
    const c = st.config;
    if (c.maxMsgsPerSubject > 0) {
      const subjects = onlySubject === undefined ? [...st.subjects.keys()] : [onlySubject];
      for (const s of subjects) {
        const n = st.subjects.get(s) ?? 0;
        if (n > c.maxMsgsPerSubject) this.#trimSubject(st, s, n - c.maxMsgsPerSubject);
      }
    }
    if (c.maxMsgs > 0 && st.messages > c.maxMsgs) this.#trimHead(st, () => st.messages > c.maxMsgs);
    if (c.maxBytes > 0 && st.bytes > c.maxBytes) this.#trimHead(st, () => st.bytes > c.maxBytes);
  }

  /** Deletes messages older than maxAge. Cheap when nothing is due (in-memory check). Call inside tx(). */
  expire(st: StreamState, now: number): number {
    const maxAge = st.config.maxAge;
    if (maxAge === 0 || st.messages === 0 || st.firstTime > now - maxAge) return 0;
    const cutoff = now - maxAge;
    return this.#trimHead(st, (row) => row.time <= cutoff);
  }

  /** Forgets msg ids older than the duplicate window (lookups check the time too; this only bounds the table). */
  sweepDedupe(st: StreamState, now: number): void {
    this.#dedupeSweep.run(st.id, now - st.config.duplicateWindow);
  }

  #removed(st: StreamState, subject: string, size: number): void {
    st.messages--;
    st.bytes -= size;
    const n = (st.subjects.get(subject) ?? 1) - 1;
    if (n === 0) st.subjects.delete(subject);
    else st.subjects.set(subject, n);
  }

  /** Deletes from the oldest message while `more(row)` says so. Returns how many went. */
  #trimHead(st: StreamState, more: (row: HeadRow) => boolean): number {
    let removed = 0;
    let done = false;
    while (!done && st.messages > 0) {
      const rows = st.stmt.head.all(256) as HeadRow[];
      if (rows.length === 0) break;
      let cut = -1;
      for (const row of rows) {
        if (!more(row)) {
          done = true;
          break;
        }
        this.#removed(st, row.subject, row.size);
        cut = row.seq;
        removed++;
      }
      if (cut >= 0) st.stmt.deleteUpTo.run(cut);
      else done = true;
    }
    if (removed > 0) this.#refreshFirst(st);
    return removed;
  }

  /** Deletes a subject's oldest `count` messages: from the middle of the stream, like JetStream. */
  #trimSubject(st: StreamState, subject: string, count: number): void {
    const rows = st.stmt.subjectHead.all(subject, count) as { seq: number; size: number }[];
    let first = false;
    for (const row of rows) {
      st.stmt.deleteOne.run(row.seq);
      this.#removed(st, subject, row.size);
      if (row.seq === st.firstSeq) first = true;
    }
    if (first) this.#refreshFirst(st);
  }

  #refreshFirst(st: StreamState): void {
    const row = st.stmt.first.get() as { seq: number; time: number } | undefined;
    if (row) {
      st.firstSeq = row.seq;
      st.firstTime = row.time;
    } else {
      st.firstSeq = st.lastSeq + 1;
      st.firstTime = 0;
    }
  }

  /** Stored messages with seq >= fromSeq (any subject), ascending. */
  readFrom(st: StreamState, fromSeq: number, limit: number): StreamMessage[] {
    return (st.stmt.readFrom.all(fromSeq, limit) as MessageRow[]).map((r) => toMessage(st.name, r));
  }

  /** Stored messages of one subject with seq >= fromSeq, ascending. */
  readSubjectFrom(st: StreamState, subject: string, fromSeq: number, limit: number): StreamMessage[] {
    return (st.stmt.readSubjectFrom.all(subject, fromSeq, limit) as MessageRow[]).map((r) => toMessage(st.name, r));
  }

  /** The last `limit` messages of a subject (before `beforeSeq` if given), ascending. */
  readSubjectLast(st: StreamState, subject: string, limit: number, beforeSeq?: number): StreamMessage[] {
    const rows = (
      beforeSeq === undefined
        ? st.stmt.readSubjectLast.all(subject, limit)
        : st.stmt.readSubjectBefore.all(subject, beforeSeq, limit)
    ) as MessageRow[];
    return rows.reverse().map((r) => toMessage(st.name, r));
  }

  info(st: StreamState): StreamInfo {
    return {
      name: st.name,
      config: { ...st.config, subjects: [...st.config.subjects] },
      firstSeq: st.firstSeq,
      lastSeq: st.lastSeq,
      messages: st.messages,
      bytes: st.bytes,
      subjects: Object.fromEntries(st.subjects),
      epoch: st.epoch,
    };
  }
}
