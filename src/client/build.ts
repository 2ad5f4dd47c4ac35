// Server-side: bundles the browser runtime (with idiomorph) into one minified ES module.
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export async function buildRuntime(): Promise<{ code: string }> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("./runtime.ts", import.meta.url))],
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
