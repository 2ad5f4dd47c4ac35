// The one pub/sub interface that apps and the framework use. Two engines implement it:
// the embedded engine (in-process router + SQLite stream store) and the NATS JetStream engine.
// The conformance suite (src/testing/conformance.ts, run on both by test/pubsub/) pins the behaviour
// both must share; the argument checks and error messages both give are in contract.ts.

/** Message headers. Keys are case-sensitive; values are strings. */
export type Headers = Record<string, string>;

/** What a subscription handler receives. Stream fields are present when the subject is captured by a stream. */
export interface Delivery {
  subject: string;
  data: Uint8Array;
  headers: Headers;
  /** Name of the stream that stored this message (absent for core, non-stream messages). */
  stream?: string;
  /** Stream sequence number (absent for core messages). */
  seq?: number;
  /** Time the stream stored the message, ms since the Unix epoch (absent for core messages). */
  time?: number;
  /**
   * Set when stored messages after this subscription's previous delivery were deleted (limits,
   * expiry) before they could be delivered: some may have been this subscription's. The NATS engine
   * sets it when its feed fell behind a stream's limits; the embedded engine delivers every message it
   * stores and never does.
   */
  gapBefore?: true;
}

/** A message read from a stream: every field is present. */
export interface StreamMessage extends Delivery {
  stream: string;
  seq: number;
  time: number;
}

export type Handler = (msg: Delivery) => void;

/** Ends a subscription. Calling it twice is harmless. */
export type Unsubscribe = () => void;

export interface SubscribeOptions {
  /**
   * Replay stored messages with seq >= fromSeq from the stream that captures the pattern's subjects,
   * then continue live, with no gap and no duplicate at the seam. Values below the stream's first seq
   * start at the first stored message; values above its last seq deliver only newer messages.
   */
  fromSeq?: number;
}

export interface PublishOptions {
  headers?: Headers;
  /** Deduplicates retries within the stream's duplicate window; a duplicate returns the original seq. */
  msgId?: string;
  /** Optimistic concurrency: reject unless the subject's last stored seq equals this (0 = no message yet). */
  expectLastSubjectSeq?: number;
}

/** Result of publishing to a subject that a stream captures. */
export interface PublishAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

export interface StreamConfig {
  /** One token of [A-Za-z0-9_-]; also a directory/table name, so keep it simple. */
  name: string;
  /** Subject patterns the stream captures (wildcards allowed). */
  subjects: string[];
  /** Max messages in the stream; 0 or undefined = unlimited. */
  maxMsgs?: number;
  /** Max messages per subject; 0 or undefined = unlimited. Evicts from the middle of the stream. */
  maxMsgsPerSubject?: number;
  /** Max age in ms; 0 or undefined = unlimited. Expired messages go without any read. */
  maxAge?: number;
  /** Max total bytes (subject + headers + payload per message); 0 or undefined = unlimited. */
  maxBytes?: number;
  /** Max bytes of one message's payload; 0 or undefined = unlimited. */
  maxMsgSize?: number;
  /** What a full stream does with a new message: evict the oldest ("old", default) or reject ("new"). */
  discard?: "old" | "new";
  /** Msg-id dedupe window in ms; default min(120_000, maxAge); must not exceed maxAge. */
  duplicateWindow?: number;
  /** NATS only: replicas for a clustered stream (default 1). The embedded engine ignores it. */
  replicas?: number;
}

/** A stream's config with every default filled in (0 = unlimited). */
export type ResolvedStreamConfig = Required<Omit<StreamConfig, "replicas">> & { replicas: number };

export interface StreamInfo {
  name: string;
  config: ResolvedStreamConfig;
  /** First stored seq; lastSeq + 1 when the stream is empty. */
  firstSeq: number;
  /** Last seq ever assigned (0 before the first message). Never goes back. */
  lastSeq: number;
  messages: number;
  bytes: number;
  /** Stored message count per subject. */
  subjects: Record<string, number>;
  /** Changes when the stream is deleted and recreated, so positions from an older epoch are invalid. */
  epoch: string;
}

export type HistoryQuery =
  | { last: number }
  | { afterSeq: number; limit: number }
  | { beforeSeq: number; limit: number };

/** The engine's link to its storage or server right now, and how often it was re-established (`PubSub.status`). */
export interface PubSubStatus {
  /** False while the engine cannot reach its server (NATS: disconnected, reconnecting) or once closed. */
  connected: boolean;
  /** Times the connection was re-established since the engine opened (always 0 for the embedded engine). */
  reconnects: number;
}

export interface PubSub {
  /** "embedded" or "nats": shown to users (the chat's engine badge) and in logs. */
  readonly kind: "embedded" | "nats";

  /**
   * Publish. If a stream captures the subject, resolves once the message is durable with its ack;
   * otherwise delivers to live subscribers only and resolves to null.
   * Throws SubjectError for an invalid publish subject, StreamLimitError when a discard-new limit rejects.
   */
  publish(subject: string, data: Uint8Array | string, opts?: PublishOptions): Promise<PublishAck | null>;

  /** Subscribe to a pattern (`*` one token, `>` the rest). Throws SubjectError for an invalid pattern. */
  subscribe(pattern: string, handler: Handler, opts?: SubscribeOptions): Unsubscribe;

  /** Create the stream, or update its limits in place (applied at once). */
  ensureStream(config: StreamConfig): Promise<StreamInfo>;

  /** Read stored messages of one literal subject, in seq order. */
  history(subject: string, query: HistoryQuery): Promise<StreamMessage[]>;

  /** Current state of a stream. Throws StreamNotFoundError if it does not exist. */
  info(stream: string): Promise<StreamInfo>;

  /**
   * Delete a stream and all its messages. Throws StreamNotFoundError if it does not exist. Recreating it
   * starts a new epoch at seq 1. Optional: an engine that cannot delete leaves it out (the conformance
   * suite then skips the epoch-on-recreate case).
   */
  deleteStream?(stream: string): Promise<void>;

  /** The connection's state and reconnect count, for monitoring (the app's `/metrics`). Cheap: no I/O. */
  status?(): PubSubStatus;

  /** Stop delivering, release resources. Further calls reject with PubSubClosedError. Idempotent. */
  close(): Promise<void>;
}
