// A self-signed certificate for localhost and 127.0.0.1, made once per process with the openssl CLI
// (Debian's `openssl` package; .ci/run installs it). Tests of HTTPS/HTTP/2 serve with it and connect
// with certificate checks off. Without openssl those tests skip loudly; under CI=true they fail.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { tempDir } from "./cleanup.ts";

export interface TestCert {
  cert: Buffer;
  key: Buffer;
  /** The same, as files (for the chat's --tls-cert/--tls-key); removed when the process exits. */
  certFile: string;
  keyFile: string;
}

let made: TestCert | null | undefined;

export function opensslAvailable(): boolean {
  return spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;
}

/** The process's test certificate, or null when the openssl CLI is missing. */
export function selfSignedCert(): TestCert | null {
  if (made !== undefined) return made;
  if (!opensslAvailable()) {
    made = null;
    return made;
  }
  const dir = tempDir("via-tls-");
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const result = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { encoding: "utf8" },
  );
  if (result.status !== 0) throw new Error(`openssl could not make a test certificate:\n${result.stderr}`);
  made = { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
  return made;
}

/**
 * The test certificate, or null when the test was skipped because the openssl CLI is missing. On CI
 * a missing openssl is a failure: a green run must mean the TLS tests ran.
 */
export function certOrSkip(t: TestContext): TestCert | null {
  const cert = selfSignedCert();
  if (cert) return cert;
  const msg = "the openssl CLI was not found: TLS tests need Debian's openssl package (apt-get install openssl)";
  if (process.env.CI === "true") assert.fail(`${msg}; refusing to skip TLS tests on CI`);
  console.warn(`\n!!! SKIPPING TLS TEST "${t.name}": ${msg} !!!\n`);
  t.skip(msg);
  return null;
}
