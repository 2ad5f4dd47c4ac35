// The fuzz case generator. Case `i` of a run is a pure function of (seed, i) and the fixture (the
// legitimate sessions and tabs created before the run), so `--seed S --case i` replays it exactly.
// Every case carries the statuses it may get: an expectation derived from docs/PROTOCOL.md, the
// route/method rules and the tab lifecycle, never "anything 4xx".
//
// Categories (generateCase): page, static, stream, action, method, raw (what node:http will not send),
// session (cookies the server did not sign), host (foreign and tricky Host headers over the other
// categories' cases), forwarded (X-Forwarded-* garbage that must change nothing) and proto (prototype
// keys in bodies, query parameters, header and cookie names).
//
// Tabs of the fixture come in three kinds (see ../run.ts):
// - live tabs (`FuzzSession.tabs`): their event stream is attached (the run keeps one open for each and
//   reopens it whenever a case takes it over), so their actions run;
// - spare tabs (`FuzzSession.spares`): ids the server issued with a page, whose stream never attached.
//   Their actions get 410; their stream requests only ever use paths no page matches (a via-reload) or
//   probe=1, so they never become live either;
// - expired ids (`FuzzSession.expired`): signed for the session with an issue time past the app's
//   tabIdMaxAgeMs. They can no longer start a context (stream 403); an action gets 410 like any tab
//   of the session that is not live.
//
// This module is the folder's entry: generateCase mixes the categories, each made by its own module
// beside it, and the fixture and case types and the shared expectations are exported from here.
import { caseRng } from "../prng.ts";
import { actionCase } from "./actions.ts";
import { forwardedCase } from "./forwarded.ts";
import { hostCase } from "./host.ts";
import { methodCase } from "./methods.ts";
import { pageCase } from "./pages.ts";
import { protoCase } from "./proto.ts";
import { rawCase } from "./raw.ts";
import { sessionCase } from "./session.ts";
import { staticCase } from "./static.ts";
import { streamCase } from "./stream.ts";
import type { Case, Fixture } from "./types.ts";

export { expectForTarget, hostAllowed } from "./expect.ts";
export type { Case, Fixture, FuzzSession, FuzzTab } from "./types.ts";

export function generateCase(seed: number, index: number, fx: Fixture): Case {
  const rng = caseRng(seed, index);
  const r = rng.next();
  if (r < 0.12) return pageCase(index, rng, fx);
  if (r < 0.18) return staticCase(index, rng, fx);
  if (r < 0.36) return streamCase(index, rng, fx);
  if (r < 0.63) return actionCase(index, rng, fx);
  if (r < 0.69) return methodCase(index, rng, fx);
  if (r < 0.8) return rawCase(index, rng, fx);
  if (r < 0.87) return sessionCase(index, rng, fx);
  if (r < 0.94) return hostCase(index, rng, fx);
  if (r < 0.97) return forwardedCase(index, rng, fx);
  return protoCase(index, rng, fx);
}
