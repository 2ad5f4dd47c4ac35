// Server-side: the browser runtime (with idiomorph) as one minified ES module, and the shared worker
// (src/client/worker.ts) as one classic script (module workers are newer than SharedWorker itself).
//
// From source (tests, tsx) the runtime is bundled with esbuild when an app starts. Compiled (dist/: what
// `npm start` runs and what the published package holds) it is read from runtime.bundle.js, which
// `npm run build` (scripts/build.mjs) writes next to this file with bundleRuntime() below.
// Why prebuilt rather than shipping src/client and bundling in the installed package: a project that
// installs via-ts then needs neither esbuild (a native binary per platform) nor idiomorph, which are
// only build tools here (devDependencies); an app starts without a bundling step; and every install of
// one version serves the same runtime bytes, the ones the tests ran.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** The prebuilt runtime's and worker's file names, next to the compiled build.js. */
export const RUNTIME_BUNDLE = "runtime.bundle.js";
export const WORKER_BUNDLE = "worker.bundle.js";

export interface ClientCode {
  /** The page's runtime (an ES module). */
  code: string;
  /** The shared worker (a classic script). */
  worker: string;
}

const FROM_SOURCE = import.meta.url.endsWith(".ts");

export async function buildRuntime(): Promise<ClientCode> {
  if (!FROM_SOURCE) {
    try {
      const [code, worker] = await Promise.all([
        readFile(new URL(RUNTIME_BUNDLE, import.meta.url), "utf8"),
        readFile(new URL(WORKER_BUNDLE, import.meta.url), "utf8"),
      ]);
      return { code, worker };
    } catch (err) {
      // Compiled without scripts/build.mjs (a bare `tsc`): bundle now if esbuild is at hand.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return bundleRuntime();
}

/** Bundles the runtime with esbuild (a devDependency: present in this repository, not in an install). */
export async function bundleRuntime(): Promise<ClientCode> {
  let esbuild: typeof import("esbuild");
  try {
    esbuild = await import("esbuild");
  } catch (err) {
    throw new Error(
      `via-ts: the browser runtime ${fileURLToPath(new URL(RUNTIME_BUNDLE, import.meta.url))} is missing and ` +
        "esbuild is not installed to bundle it (build via-ts with `npm run build`)",
      { cause: err },
    );
  }
  // The entries next to this file: TypeScript from source, the compiled JavaScript in dist/.
  const ext = FROM_SOURCE ? ".ts" : ".js";
  const bundle = async (name: string, format: "esm" | "iife"): Promise<string> => {
    const result = await esbuild.build({
      entryPoints: [fileURLToPath(new URL(`./${name}${ext}`, import.meta.url))],
      bundle: true,
      format,
      minify: true,
      target: "es2020",
      write: false,
      platform: "browser",
      legalComments: "none",
      logLevel: "silent",
    });
    const out = result.outputFiles[0];
    if (!out) throw new Error(`bundleRuntime: esbuild produced no output for ${name}`);
    return out.text;
  };
  const [code, worker] = await Promise.all([bundle("runtime", "esm"), bundle("worker", "iife")]);
  return { code, worker };
}
