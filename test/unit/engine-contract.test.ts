// The engine contract is part of the package: another engine imports the same checks and error texts
// from via-ts/pubsub, and ours refuse bad arguments with exactly those texts.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { engineContract, openEmbedded } from "via-ts/pubsub";

test("via-ts/pubsub exports the engine contract, whose checks and texts the engines use", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "via-contract-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ps = await openEmbedded({ dataDir: dir });
  t.after(() => ps.close());
  const { contractMessage, checkPublish } = engineContract;
  assert.throws(() => checkPublish("a.b", "x", { msgId: "" }), { message: contractMessage.msgId });
  await assert.rejects(ps.publish("a.b", "x", { msgId: "" }), { message: contractMessage.msgId });
  await assert.rejects(ps.publish("a.b", 42 as unknown as string), { message: contractMessage.data });
});
