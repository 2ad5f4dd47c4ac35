// The conformance suite on the embedded engine: each engine gets its own temp data dir; restart() is
// close + reopen of the same dir (what a process restart does to the embedded engine).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runConformance } from "via-ts/testing";
import { openEmbedded } from "../../src/pubsub/embedded/engine.ts";
import type { PubSub } from "../../src/pubsub/types.ts";

const root = await mkdtemp(join(tmpdir(), "via-conformance-embedded-"));
const dirs = new WeakMap<PubSub, string>();
const open = new Set<PubSub>();
let n = 0;

async function openIn(dir: string): Promise<PubSub> {
  const ps = await openEmbedded({ dataDir: dir });
  dirs.set(ps, dir);
  open.add(ps);
  return ps;
}

runConformance({
  name: "embedded",
  open: () => openIn(join(root, `e${++n}`)),
  async restart(engine) {
    const dir = dirs.get(engine);
    if (!dir) throw new Error("restart: engine not opened by this harness");
    await engine.close();
    open.delete(engine);
    return openIn(dir);
  },
  restartKeepsSubscriptions: false,
  async cleanup() {
    for (const ps of open) await ps.close();
    await rm(root, { recursive: true, force: true });
  },
});
