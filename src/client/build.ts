// Server-side: bundles the browser runtime (with idiomorph) into one minified ES module.
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

// The runtime's entry next to this file: TypeScript when the server runs from source (tests, tsx),
// the compiled JavaScript when it runs from dist/ (`npm start`). esbuild bundles either.
const ENTRY = import.meta.url.endsWith(".ts") ? "./runtime.ts" : "./runtime.js";

export async function buildRuntime(): Promise<{ code: string }> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(ENTRY, import.meta.url))],
    bundle: true,
    format: "esm",
    minify: true,
    target: "es2020",
    write: false,
    platform: "browser",
    legalComments: "none",
    logLevel: "silent",
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error("buildRuntime: esbuild produced no output");
  return { code: out.text };
}
