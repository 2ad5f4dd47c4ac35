// A node:test reporter that prints only the closing counts as one plain line,
// "N passed, N failed, N skipped", after the spec reporter's output.
export default async function* summaryReporter(source) {
  const counts = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
  for await (const event of source) {
    if (event.type === "test:diagnostic") {
      const m = /^(pass|fail|skipped|todo|cancelled) (\d+)$/.exec(event.data.message);
      if (m) counts[m[1]] = Number(m[2]);
    }
  }
  const failed = counts.fail + counts.cancelled;
  yield `\ntests: ${counts.pass} passed, ${failed} failed, ${counts.skipped + counts.todo} skipped\n`;
}
