// `npm run figures -- <results.json> …`: the tables of a drill's or a benchmark's run, as Markdown,
// from the JSON its --json option wrote, so a table in the docs can come from a results file.
import { readFileSync } from "node:fs";
import { defineCommand, runMain } from "../harness/cli.ts";
import { figuresOf } from "../harness/figures.ts";

const cli = defineCommand({
  script: "figures",
  file: "scripts/figures.ts",
  title: "figures — the tables of a run's --json results, as Markdown",
  about: `Prints every table in the results files that a drill or a benchmark wrote with --json
(npm run drill:crash -- --json run.json, npm run bench:chat -- --json run.json, ...): first the
command, the machine and the time of the run, then each table under its name.`,
  flags: {},
  positionals: "<results.json> …",
});

async function main(): Promise<number> {
  if (cli.positionals.length === 0) {
    process.stderr.write(`no results file given\n\n${cli.help}`);
    return 2;
  }
  for (const file of cli.positionals) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, "utf8"));
    } catch (err) {
      process.stderr.write(`cannot read ${file}: ${(err as Error).message}\n`);
      return 2;
    }
    if (cli.positionals.length > 1) console.log(`## ${file}\n`);
    console.log(figuresOf(doc as Parameters<typeof figuresOf>[0]));
  }
  return 0;
}

runMain(main);
