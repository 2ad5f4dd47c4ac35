// Errors every engine throws for the same cause, so callers (and the conformance suite)
// can branch on the class instead of on engine-specific messages.

export class PubSubError extends Error {
  override name = "PubSubError";
}

/** A subject or pattern breaks the NATS subject grammar. The message names the subject and the rule. */
export class SubjectError extends PubSubError {
  override name = "SubjectError";
  constructor(
    readonly subject: string,
    readonly rule: string,
  ) {
    super(`invalid subject ${JSON.stringify(subject.length > 80 ? `${subject.slice(0, 80)}…` : subject)}: ${rule}`);
  }
}

/** A stream limit with discard "new" (or max message size) rejected the publish. Nothing was stored. */
export class StreamLimitError extends PubSubError {
  override name = "StreamLimitError";
  constructor(
    readonly stream: string,
    readonly limit: "maxMsgs" | "maxMsgsPerSubject" | "maxBytes" | "maxMsgSize",
  ) {
    super(`stream ${stream}: publish rejected, ${limit} limit reached (discard new)`);
  }
}

/** expectLastSubjectSeq did not match. */
export class WrongLastSequenceError extends PubSubError {
  override name = "WrongLastSequenceError";
  constructor(
    readonly subject: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`subject ${subject}: expected last seq ${expected}, stream has ${actual}`);
  }
}

export class StreamNotFoundError extends PubSubError {
  override name = "StreamNotFoundError";
  constructor(readonly stream: string) {
    super(`stream ${stream} not found`);
  }
}

/** A stream config is invalid (bad name, overlapping subjects, duplicate window above max age, ...). */
export class StreamConfigError extends PubSubError {
  override name = "StreamConfigError";
}

/** The engine was closed. */
export class PubSubClosedError extends PubSubError {
  override name = "PubSubClosedError";
  constructor() {
    super("pub/sub engine is closed");
  }
}

/** A publish could not be confirmed in time (after retries with the same msg id). */
export class PublishTimeoutError extends PubSubError {
  override name = "PublishTimeoutError";
}

/** Another process holds the embedded engine's data directory. */
export class DataDirLockedError extends PubSubError {
  override name = "DataDirLockedError";
}
