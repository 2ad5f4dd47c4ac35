#!/usr/bin/env node
// `npm run build` (and `npm start` and `npm pack`, before they run): compiles the framework and the chat
// to plain JavaScript with type declarations (.d.ts) in dist/ with the project's own TypeScript, bundles
// the browser runtime and its shared worker into dist/src/client/*.bundle.js (see src/client/build.ts for why it is
// prebuilt), and copies the files the code reads next to itself (stylesheets), so `npm start` runs
// compiled code with no TypeScript loader. The package ships dist/src (package.json "files").
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "dist");
// The compiler's own launcher (its package exports no path to it, so it is found on disk).
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");

rmSync(out, { recursive: true, force: true });
const result = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" });
if (result.status !== 0) {
  console.error("build: the TypeScript compiler failed");
  process.exit(result.status ?? 1);
}

const ASSETS = /\.css$/;
function copyAssets(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) copyAssets(path);
    else if (ASSETS.test(name)) cpSync(path, join(out, relative(root, path)));
  }
}
for (const dir of ["src", "apps"]) if (existsSync(join(root, dir))) copyAssets(join(root, dir));

// The browser runtime, bundled once here with the compiled bundler code itself (one set of options).
const clientBuild = await import(pathToFileURL(join(out, "src", "client", "build.js")).href);
const { code, worker } = await clientBuild.bundleRuntime();
writeFileSync(join(out, "src", "client", clientBuild.RUNTIME_BUNDLE), code);
writeFileSync(join(out, "src", "client", clientBuild.WORKER_BUNDLE), worker);
console.log(`build: ${relative(process.cwd(), out) || "."} is ready`);
