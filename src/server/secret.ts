// The app's signing secret (tab ids). Every instance behind one load balancer, and every restart,
// must use the same one, or open tabs cannot prove their ids and have to reload. In order:
// `AppOptions.secret`; else one random secret kept in the app's pub/sub engine (the first instance
// creates it, the others read it: the engine is what they already share); else a random one per
// process, so tabs reload after a restart.
import { randomBytes } from "node:crypto";
import { WrongLastSequenceError } from "../pubsub/errors.ts";
import type { PubSub } from "../pubsub/types.ts";

export const SECRET_STREAM = "VIA_SECRET";
export const SECRET_SUBJECT = "_via.secret";
const SECRET_BYTES = 32;

export function secretFromOption(secret: string | Buffer): Buffer {
  const buf = typeof secret === "string" ? Buffer.from(secret, "utf8") : Buffer.from(secret);
  if (buf.length < 32) throw new RangeError("AppOptions.secret needs at least 32 bytes");
  return buf;
}

/** The secret kept in `pubsub`, created by whichever instance gets there first. */
export async function secretFromEngine(pubsub: PubSub, replicas?: number): Promise<Buffer> {
  await pubsub.ensureStream({
    name: SECRET_STREAM,
    subjects: [SECRET_SUBJECT],
    maxMsgsPerSubject: 1,
    ...(replicas ? { replicas } : {}),
  });
  const stored = async () => (await pubsub.history(SECRET_SUBJECT, { last: 1 }))[0]?.data;
  const existing = await stored();
  if (existing && existing.length >= SECRET_BYTES) return Buffer.from(existing);
  try {
    // Only the first writer wins; a concurrent instance gets WrongLastSequenceError and reads the winner's.
    await pubsub.publish(SECRET_SUBJECT, randomBytes(SECRET_BYTES), { expectLastSubjectSeq: 0 });
  } catch (err) {
    if (!(err instanceof WrongLastSequenceError)) throw err;
  }
  const created = await stored();
  if (!created || created.length < SECRET_BYTES) throw new Error("could not create the app secret in the engine");
  return Buffer.from(created);
}

export function randomSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}
