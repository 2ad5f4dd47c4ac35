// What a NATS or JetStream error means to the engine, decided in one place: retry it (transient), or
// answer the caller with one of our error classes (src/pubsub/errors.ts), or pass it on. The client
// library does not export every class it throws (InvalidNameError, JetStreamNotEnabled), so some are
// told by name or text; keeping those tests here means a client upgrade that renames one breaks one file.
import { JetStreamApiError } from "@nats-io/jetstream";
import { errors as natsErrors, RequestError } from "@nats-io/transport-node";
import {
  PubSubError,
  StreamConfigError,
  StreamLimitError,
  StreamNotFoundError,
  WrongLastSequenceError,
} from "../errors.ts";

/** JetStream API error codes the engine acts on (server's errors.json). */
export const JS_ERR = {
  /** No stream leader yet (cluster): a retry gets through once one is elected. */
  clusterNotAvail: 10008,
  maxMsgsReached: 10077,
  messageTooLarge: 10054,
  wrongLastSequence: 10071,
  streamNameInUse: 10058,
  streamNotFound: 10059,
  subjectsOverlap: 10065,
  /** Config values the server refuses (replicas, limits, ...): the caller's config, not an outage. */
  badConfig: [10050, 10051, 10052, 10053] as readonly number[],
} as const;

/** A read (by a short-lived consumer, or by the stream leader's gets) got no answer in time (reader.ts). Transient. */
export class ReadTimeoutError extends PubSubError {
  override name = "ReadTimeoutError";
}

/** A direct get answered with a status other than found / not found (bad request, no stream, ...). */
export class DirectGetError extends PubSubError {
  override name = "DirectGetError";
  constructor(
    readonly code: number,
    description: string,
  ) {
    super(`direct get: ${code} ${description}`);
  }
}

export function apiErrorCode(err: unknown): number | undefined {
  if (err instanceof JetStreamApiError) return err.code;
  return undefined;
}

const nameOf = (err: unknown) => (err as Error | undefined)?.name;

/**
 * Transient: worth another try (no answer in time, no responders, the server or stream leader not
 * ready). Anything else is an answer and is not retried.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof natsErrors.TimeoutError) return true;
  if (err instanceof ReadTimeoutError) return true;
  // "no responders" surfaces as JetStreamNotEnabled (not exported): server restarting or no stream leader yet.
  if (nameOf(err) === "JetStreamNotEnabled") return true;
  if (err instanceof RequestError) return true;
  if (err instanceof JetStreamApiError) return err.status === 503 || err.code === JS_ERR.clusterNotAvail;
  return false;
}

/** ensureStream's add refused because a stream of that name exists with another config: update it instead. */
export function isStreamNameInUse(err: unknown): boolean {
  return apiErrorCode(err) === JS_ERR.streamNameInUse;
}

/** The server has no stream of that name. */
export function isStreamNotFound(err: unknown): boolean {
  return apiErrorCode(err) === JS_ERR.streamNotFound;
}

/** ensureStream refused because another stream captures some of the same subjects. */
export function isSubjectsOverlap(err: unknown): boolean {
  return apiErrorCode(err) === JS_ERR.subjectsOverlap;
}

/** STREAM.FIND's answer when no stream captures the subject: a core subject, not a failure. */
export function isNoStreamForSubject(err: unknown): boolean {
  return (err as Error | undefined)?.message?.includes("no stream matches subject") === true;
}

/** Maps a JetStream API error from a publish to our error classes; returns null when it is not one we map. */
export function mapPublishError(err: unknown, stream: string, subject: string, expected?: number): PubSubError | null {
  if (!(err instanceof JetStreamApiError)) return null;
  const desc = err.message ?? "";
  switch (err.code) {
    case JS_ERR.maxMsgsReached:
      if (/per subject/i.test(desc)) return new StreamLimitError(stream, "maxMsgsPerSubject");
      if (/bytes/i.test(desc)) return new StreamLimitError(stream, "maxBytes");
      return new StreamLimitError(stream, "maxMsgs");
    case JS_ERR.messageTooLarge:
      return new StreamLimitError(stream, "maxMsgSize");
    case JS_ERR.wrongLastSequence: {
      // "wrong last sequence: 21": the server names the actual last seq of the subject.
      const m = /(\d+)\s*$/.exec(desc);
      return new WrongLastSequenceError(subject, expected ?? -1, m ? Number(m[1]) : -1);
    }
    case JS_ERR.streamNotFound:
      return new StreamNotFoundError(stream);
    default:
      return null;
  }
}

/**
 * Maps an error from a stream management call (add/update/info/delete). An overlap is left to the
 * caller, which can name the other stream (contract.ts words it the same for both engines).
 */
export function mapStreamError(err: unknown, stream: string): unknown {
  // The client checks names before asking the server: a name it refuses belongs to no stream.
  if (nameOf(err) === "InvalidNameError") return new StreamNotFoundError(stream);
  const code = apiErrorCode(err);
  if (code === JS_ERR.streamNotFound) return new StreamNotFoundError(stream);
  if (code === JS_ERR.subjectsOverlap) {
    return new StreamConfigError(`stream ${stream}: subjects overlap with an existing stream`);
  }
  if (code === JS_ERR.streamNameInUse) {
    return new StreamConfigError(`stream ${stream}: name already in use with a different config`);
  }
  if (code !== undefined && JS_ERR.badConfig.includes(code)) {
    return new StreamConfigError(`stream ${stream}: ${(err as Error).message}`);
  }
  return err;
}
