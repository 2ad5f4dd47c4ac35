// via-ts as another project gets it: `npm pack`, then `npm install` of the tarball into an empty project
// that writes a TSX page against the package's types, compiles it with TypeScript, serves it with plain
// node, and runs the pub/sub conformance suite from `via-ts/testing` on the packaged embedded engine.
// Also: the entry points the repository resolves to its sources (tsconfig.json "paths") are the ones
// package.json "exports" publishes, and the chat reaches the framework only through them.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Browser, httpRequest } from "../../harness/sse-client.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

interface PackageJson {
  name: string;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as PackageJson;

/** The version of a package installed in this repository's node_modules. */
function installedVersion(name: string): string {
  const json = JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as {
    version: string;
  };
  return json.version;
}

/**
 * The environment for the npm and node children: without what the outer `npm test` or test runner
 * put there (npm_config_prefix and friends would point npm at this repository; NODE_TEST_CONTEXT would
 * make the inner `node --test` report to us instead of printing).
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === "NODE_TEST_CONTEXT" || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  return env;
}

interface RunResult {
  code: number | null;
  output: string;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of running) p.kill("SIGKILL");
});

function run(command: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, { cwd, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    running.add(proc);
    let output = "";
    proc.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    proc.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${command} ${args.join(" ")} took over ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    proc.once("error", reject);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      running.delete(proc);
      resolve({ code, output });
    });
  });
}

async function mustRun(command: string, args: string[], cwd: string, timeoutMs?: number): Promise<string> {
  const { code, output } = await run(command, args, cwd, timeoutMs);
  assert.equal(code, 0, `${command} ${args.join(" ")} (in ${cwd}) exited with ${code}:\n${output}`);
  return output;
}

/** The consumer's page: the README's kind of page, in TSX against the installed package's types. */
const PAGE = `import { createApp, type Html } from "via-ts";

const app = createApp({ title: "Hello" });

app.page("/", (c) => {
  let count = 0;
  const name = c.signal("world", { name: "name" });
  const greet = c.action(() => {
    count++;
    c.sync();
  });
  const view = (): Html => (
    <main>
      <input id="name" {...name.bind()} />
      <button id="greet" {...greet.onClick()}>Greet</button>
      <p id="hello">
        Hello, {name.value}! ({count})
      </p>
    </main>
  );
  c.view(view);
});

const { url } = await app.listen(0, "127.0.0.1");
console.log(\`listening \${url}\`);
`;

/** A third engine's conformance run, as its author would write it (here the packaged embedded one). */
const ENGINE_TEST = `import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openEmbedded, type PubSub } from "via-ts/pubsub";
import { runConformance } from "via-ts/testing";

const root = mkdtempSync(join(tmpdir(), "via-consumer-engine-"));
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
  name: "packaged embedded",
  open: () => openIn(join(root, \`e\${++n}\`)),
  async restart(engine) {
    await engine.close();
    open.delete(engine);
    return openIn(dirs.get(engine)!);
  },
  restartKeepsSubscriptions: false,
  async cleanup() {
    for (const ps of open) await ps.close();
    rmSync(root, { recursive: true, force: true });
  },
});
`;

const TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    // Every declaration file the package ships is checked, not only the consumer's own code.
    skipLibCheck: false,
    jsx: "react-jsx",
    jsxImportSource: "via-ts",
    types: ["node"],
    rootDir: ".",
    outDir: "out",
  },
  include: ["page.tsx", "engine.test.ts"],
};

test("a project that installs the packed tarball type-checks a TSX page against it, serves it, and runs the conformance suite", {
  timeout: 180_000,
}, async (t) => {
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), "via-pack-"));
  let page: ChildProcess | undefined;
  t.after(async () => {
    if (page && page.exitCode === null && page.signalCode === null) {
      const gone = new Promise((r) => page!.once("exit", r));
      page.kill("SIGTERM");
      const timer = setTimeout(() => page!.kill("SIGKILL"), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(work, { recursive: true, force: true });
  });

  // 1. Pack a copy of the repository (its own dist/, built by prepack), so this test never rebuilds
  //    the dist/ that `npm start` and the compiled-chat tests run from at the same time.
  const source = join(work, "source");
  const SKIP = new Set(["node_modules", ".git", "dist", "data", ".tmp"]);
  cpSync(ROOT, source, { recursive: true, filter: (src) => !SKIP.has(relative(ROOT, src)) });
  symlinkSync(join(ROOT, "node_modules"), join(source, "node_modules"), "dir");
  const packed = join(work, "packed");
  mkdirSync(packed);
  await mustRun("npm", ["pack", "--pack-destination", packed, "--silent"], source, 120_000);
  const tarballs = readdirSync(packed).filter((f) => f.endsWith(".tgz"));
  assert.equal(tarballs.length, 1, `one tarball: ${tarballs.join(", ")}`);
  const tarball = join(packed, tarballs[0]!);
  const listing = (await mustRun("tar", ["-tzf", tarball], work)).split("\n").filter(Boolean);
  for (const file of ["package.json", "README.md", "dist/src/index.js", "dist/src/index.d.ts"]) {
    assert.ok(listing.includes(`package/${file}`), `the tarball holds ${file}`);
  }
  assert.ok(listing.includes("package/dist/src/client/runtime.bundle.js"), "the browser runtime ships prebuilt");
  const strays = listing.filter((f) => !/^package\/(package\.json|README\.md|LICENSE|dist\/src\/.*)$/.test(f));
  assert.deepEqual(strays, [], "nothing but dist/src, the README and package.json: no sources, tests or chat");

  // 2. An empty project installs it. Dependencies come from npm's cache when it has them (`npm ci`
  //    filled it), else from the registry. Install scripts are skipped: better-sqlite3's would compile
  //    SQLite from source here (minutes); the same version's compiled addon is copied from this
  //    repository instead, pinned so the two match.
  const app = join(work, "consumer");
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    `${JSON.stringify({ name: "via-consumer", private: true, type: "module" }, null, 2)}\n`,
  );
  const sqlite = installedVersion("better-sqlite3");
  await mustRun(
    "npm",
    [
      "install",
      tarball,
      `better-sqlite3@${sqlite}`,
      `@types/node@${installedVersion("@types/node")}`,
      "--prefer-offline",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
    ],
    app,
    120_000,
  );
  const addon = join("better-sqlite3", "build", "Release", "better_sqlite3.node");
  mkdirSync(join(app, "node_modules", "better-sqlite3", "build", "Release"), { recursive: true });
  copyFileSync(join(ROOT, "node_modules", addon), join(app, "node_modules", addon));
  for (const dev of ["esbuild", "idiomorph", "typescript", "tsx", "unhomoglyph", "@picocss/pico"]) {
    assert.ok(!existsSync(join(app, "node_modules", dev)), `${dev} is not installed with via-ts`);
  }

  // 3. Its TSX page and engine test type-check against the shipped declarations and compile.
  writeFileSync(join(app, "tsconfig.json"), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
  writeFileSync(join(app, "page.tsx"), PAGE);
  writeFileSync(join(app, "engine.test.ts"), ENGINE_TEST);
  await mustRun(process.execPath, [TSC, "-p", "."], app);

  // 4. Plain node serves the page: it loads, its event stream opens, an action re-renders the view.
  page = spawn(process.execPath, ["out/page.js"], { cwd: app, env: childEnv(), stdio: ["ignore", "pipe", "pipe"] });
  running.add(page);
  page.once("exit", () => running.delete(page!));
  let pageOutput = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the page did not start within 15 s:\n${pageOutput}`)), 15_000);
    const onData = (d: Buffer) => {
      pageOutput += d.toString();
      const m = /listening (http:\/\/\S+)/.exec(pageOutput);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    page!.stdout!.on("data", onData);
    page!.stderr!.on("data", onData);
    page!.once("exit", (code) => reject(new Error(`the page exited with ${code}:\n${pageOutput}`)));
  });
  const tab = await new Browser(url).load();
  assert.match(tab.html, /<p id="hello">Hello, world! \(0\)<\/p>/);
  const runtimeUrl = /<script type="module" src="([^"]+)"><\/script>/.exec(tab.html)?.[1];
  assert.ok(runtimeUrl, "the page loads the runtime");
  const runtime = await httpRequest(url + runtimeUrl);
  assert.equal(runtime.status, 200);
  assert.equal(
    runtime.body,
    readFileSync(join(app, "node_modules", "via-ts", "dist", "src", "client", "runtime.bundle.js"), "utf8"),
    "the runtime served is the prebuilt bundle from the package",
  );
  const stream = await tab.connect();
  assert.equal(stream.status, 200);
  assert.equal((await tab.action(tab.actionOf("greet"), { name: "<Ada>" })).status, 204);
  await stream.waitFor((e) => (e.data.elements ?? "").includes("Hello, &lt;Ada&gt;! (1)"), 5000);
  stream.close();

  // 5. The conformance suite runs from `via-ts/testing` against `via-ts/pubsub`, compiled and installed.
  const suite = await run(process.execPath, ["--test", "--test-reporter=tap", "out/engine.test.js"], app);
  assert.equal(suite.code, 0, `the packaged conformance suite failed:\n${suite.output}`);
  const passed = Number(/^# pass (\d+)$/m.exec(suite.output)?.[1] ?? 0);
  assert.ok(passed >= 30, `the suite ran its claims (${passed} passed):\n${suite.output}`);
  assert.match(suite.output, /^# fail 0$/m);

  t.diagnostic(`pack, install, compile, serve and conformance took ${Date.now() - started} ms`);
});

test("the entry points the repository resolves to its sources are exactly the package's exports", () => {
  // tsconfig.json may hold comments (JSONC): drop whole-line ones before parsing.
  const tsconfig = JSON.parse(
    readFileSync(join(ROOT, "tsconfig.json"), "utf8")
      .split("\n")
      .filter((line) => !/^\s*\/\//.test(line))
      .join("\n"),
  ) as { compilerOptions: { paths: Record<string, string[]> } };
  const fromExports: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === "string") continue; // ./package.json
    const name = subpath === "." ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    assert.equal(target.types, target.default.replace(/\.js$/, ".d.ts"), `${name}: types next to the code`);
    // dist/src/x.js is compiled from src/x.ts (or .tsx).
    const sourceBase = target.default.replace(/^\.\/dist\//, "./").replace(/\.js$/, "");
    const source = [".ts", ".tsx"].map((ext) => sourceBase + ext).find((p) => existsSync(join(ROOT, p)));
    assert.ok(source, `${name}: ${target.default} is compiled from a source file`);
    fromExports[name] = [source];
  }
  assert.deepEqual(tsconfig.compilerOptions.paths, fromExports);
});

test("the chat reaches the framework only through the package's entry point", () => {
  const dir = join(ROOT, "apps", "chat");
  for (const file of readdirSync(dir).filter((f) => /\.tsx?$/.test(f))) {
    const text = readFileSync(join(dir, file), "utf8");
    assert.doesNotMatch(text, /from "(\.\.\/)+src\//, `${file} imports the framework's sources directly`);
  }
});
