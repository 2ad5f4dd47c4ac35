// `via-ts/testing`: what an engine author needs to check a PubSub engine against the contract of
// `via-ts/pubsub` (the same suite the embedded and NATS engines pass). Uses node:test, so run it with
// `node --test`.
export { type EngineHarness, runConformance } from "./conformance.ts";
