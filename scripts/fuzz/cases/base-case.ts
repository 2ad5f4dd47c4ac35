// The case another generator makes over node:http (page, static, stream, action or method): the Host
// and forwarded cases both send it again with their own headers added.
import type { Rng } from "../prng.ts";
import type { HttpReq } from "../send.ts";
import { actionCase } from "./actions.ts";
import { methodCase } from "./methods.ts";
import { pageCase } from "./pages.ts";
import { staticCase } from "./static.ts";
import { streamCase } from "./stream.ts";
import type { Case, Fixture } from "./types.ts";

/** A page, static, stream, action or method case as its own generator makes it (all over node:http). */
export function baseCase(index: number, rng: Rng, fx: Fixture): Case & { req: HttpReq } {
  const gen = rng.pick([pageCase, pageCase, staticCase, streamCase, actionCase, actionCase, methodCase]);
  return gen(index, rng, fx) as Case & { req: HttpReq };
}
