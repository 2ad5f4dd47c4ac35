#!/usr/bin/env node
// `npm run build` (and `npm start`, before it runs): compiles the framework and the chat to plain
// JavaScript in dist/ with the project's own TypeScript, and copies the files the code reads next to
// itself (stylesheets), so `npm start` runs compiled code with no TypeScript loader.
import { spawnSync } from "node:child_process";
import { cpSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

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
for (const dir of ["src", "apps"]) copyAssets(join(root, dir));
console.log(`build: ${relative(process.cwd(), out) || "."} is ready`);
