// Managed by Slipway (platform-owned): `copier update` keeps this file current.
// `make contract`: hold the running service to the committed openapi.yaml.
//
// On a scratch database on DATABASE_URL's server (created, migrated with
// `make migrate`, dropped afterwards): start the built service (dist/) on a
// free loopback port, run Schemathesis against it with schemathesis.toml
// (every check, positive and negative data, stateful links), then stop the
// service. Bounded twice: CONTRACT_MAX_EXAMPLES cases per operation, and
// CONTRACT_TIMEOUT seconds for the whole run (a hang is a failure, not a
// stuck pipeline). Schemathesis runs through uvx at SCHEMATHESIS_VERSION.
// CONTRACT_MIGRATE replaces `make migrate` as the command that migrates the
// scratch database (it sees DATABASE_URL set to it). Runs with Node's type
// stripping.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

import pg from "pg";

const DOCUMENT = "openapi.yaml";
const REPORTS = join("build", "contract");
const STARTUP_MS = 30_000; // a deadline against hanging, not a speed requirement

class Failed extends Error {}

// Ctrl-C (or a cancelled job) reaches Schemathesis and the service too, in
// the same process group: let them stop, then stop the service and drop the
// database below instead of exiting with it left behind.
const received: { signal: string | null } = { signal: null };
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    received.signal = signal;
  });
}

function stopIfInterrupted(): void {
  if (received.signal !== null) throw new Failed(`interrupted (${received.signal})`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === "string") reject(new Error("no port"));
        else resolve(address.port);
      });
    });
  });
}

async function waitUntilLive(baseUrl: string, service: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + STARTUP_MS;
  while (Date.now() < deadline && service.exitCode === null) {
    try {
      const response = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) return true;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  return false;
}

async function stop(service: ChildProcess): Promise<void> {
  if (service.exitCode !== null || service.signalCode !== null) return;
  const exited = new Promise((resolve) => service.once("exit", resolve));
  service.kill("SIGTERM");
  const timer = setTimeout(() => service.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

function migrate(scratchUrl: string): void {
  const command = process.env["CONTRACT_MIGRATE"] ?? "";
  const env = { ...process.env, DATABASE_URL: scratchUrl };
  const run =
    command === ""
      ? spawnSync(process.env["MAKE"] ?? "make", ["--no-print-directory", "migrate"], {
          env,
          stdio: "inherit",
        })
      : spawnSync("sh", ["-c", command], { env, stdio: "inherit" });
  if (run.status !== 0) {
    throw new Failed(`migrating the scratch database failed (${command || "make migrate"})`);
  }
}

function schemathesis(baseUrl: string, maxExamples: string, timeoutSeconds: number): number {
  const version = process.env["SCHEMATHESIS_VERSION"] ?? "";
  if (version === "") throw new Failed("SCHEMATHESIS_VERSION is not set (run it through make)");
  const args = [
    `schemathesis==${version}`,
    "run",
    DOCUMENT,
    "--url",
    baseUrl,
    "--max-examples",
    maxExamples,
    "--report",
    "junit",
    "--report-dir",
    REPORTS,
  ];
  console.error(`contract: uvx ${args.join(" ")}`);
  const run = spawnSync("uvx", args, { stdio: "inherit", timeout: timeoutSeconds * 1000 });
  if (run.error !== undefined && "code" in run.error && run.error.code === "ETIMEDOUT") {
    console.error(
      `contract: Schemathesis did not finish within ${String(timeoutSeconds)} s ` +
        "(CONTRACT_TIMEOUT); a request that hangs is a failure",
    );
    return 1;
  }
  if (run.error !== undefined) {
    throw new Failed(`cannot run uvx (install uv): ${run.error.message}`);
  }
  return run.status ?? 1;
}

async function againstService(scratchUrl: string): Promise<number> {
  const maxExamples = process.env["CONTRACT_MAX_EXAMPLES"] ?? "50";
  const timeoutSeconds = Number(process.env["CONTRACT_TIMEOUT"] ?? "600");
  if (!/^[1-9][0-9]*$/.test(maxExamples) || !(timeoutSeconds > 0)) {
    throw new Failed("CONTRACT_MAX_EXAMPLES and CONTRACT_TIMEOUT must be positive numbers");
  }
  migrate(scratchUrl);
  stopIfInterrupted();
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${String(port)}`;
  mkdirSync(REPORTS, { recursive: true });
  const logPath = join(REPORTS, "service.log");
  const log = openSync(logPath, "w");
  const service = spawn(process.execPath, ["dist/main.js"], {
    env: {
      ...process.env,
      DATABASE_URL: scratchUrl,
      HOST: "127.0.0.1",
      PORT: String(port),
      SHUTDOWN_GRACE_SECONDS: "0",
    },
    stdio: ["ignore", log, log],
  });
  try {
    if (!(await waitUntilLive(baseUrl, service))) {
      throw new Failed(`the service did not start; its log: ${logPath}`);
    }
    const result = schemathesis(baseUrl, maxExamples, timeoutSeconds);
    stopIfInterrupted();
    if (result !== 0) console.error(`contract: failed (see above); the service's log: ${logPath}`);
    return result;
  } finally {
    await stop(service);
  }
}

async function main(): Promise<number> {
  const raw = process.env["DATABASE_URL"] ?? "";
  if (raw === "") {
    console.error("contract: DATABASE_URL is not set");
    return 2;
  }
  const name = `contract_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: raw });
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
  } catch (error) {
    await admin.end().catch(() => undefined);
    console.error(
      "contract: cannot create a scratch database on DATABASE_URL's server " +
        `(the role needs CREATEDB): ${error instanceof Error ? error.message : String(error)}`,
    );
    return 1;
  }
  try {
    const scratch = new URL(raw);
    scratch.pathname = `/${name}`;
    return await againstService(scratch.toString());
  } catch (error) {
    if (!(error instanceof Failed)) throw error;
    console.error(`contract: ${error.message}`);
    return 1;
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

process.exitCode = await main();
