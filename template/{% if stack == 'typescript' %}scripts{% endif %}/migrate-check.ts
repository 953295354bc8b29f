// Managed by Slipway (platform-owned): `copier update` keeps this file current.
// `make migrate-check`: in a scratch database on DATABASE_URL's server, the
// committed migrations applied by `prisma migrate deploy` must give exactly
// what prisma/schema.prisma describes (`prisma migrate diff --exit-code`).
//
// A Prisma CLI whose schema engine is missing or broken can exit 0 with empty
// output, so every step also proves it did real work: deploy must leave the
// tables and its migration records, and the engine must render SQL for the
// schema before its empty diff is believed. Runs with Node's type stripping.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

import pg from "pg";

const MIGRATIONS = "prisma/migrations";
const SCHEMA = "prisma/schema.prisma";

class CheckFailed extends Error {}

function prisma(args: string[], databaseUrl: string): { code: number; out: string } {
  const result = spawnSync("node_modules/.bin/prisma", args, {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    encoding: "utf8",
  });
  const out = `${result.stdout}${result.stderr}`;
  return { code: result.status ?? 1, out };
}

function migrationCount(): number {
  return readdirSync(MIGRATIONS).filter((name) => {
    const dir = join(MIGRATIONS, name);
    return (
      statSync(dir).isDirectory() && statSync(join(dir, "migration.sql"), { throwIfNoEntry: false })
    );
  }).length;
}

async function applied(databaseUrl: string): Promise<{ migrations: number; tables: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const tables = await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'",
    );
    const ledger = await client.query<{ exists: boolean }>(
      "SELECT to_regclass('public._prisma_migrations') IS NOT NULL AS exists",
    );
    let migrations = 0;
    if (ledger.rows[0]?.exists === true) {
      const done = await client.query<{ n: string }>(
        "SELECT count(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL",
      );
      migrations = Number(done.rows[0]?.n ?? 0);
    }
    return { migrations, tables: Number(tables.rows[0]?.n ?? 0) };
  } finally {
    await client.end();
  }
}

function deploy(scratchUrl: string, step: string): void {
  const run = prisma(["migrate", "deploy"], scratchUrl);
  if (run.code !== 0) throw new CheckFailed(`${step}: prisma migrate deploy failed\n${run.out}`);
}

async function check(scratchUrl: string): Promise<void> {
  const expected = migrationCount();
  deploy(scratchUrl, "deploy to an empty database");
  const after = await applied(scratchUrl);
  if (after.migrations !== expected || after.tables === 0) {
    throw new CheckFailed(
      `prisma migrate deploy exited 0 but recorded ${after.migrations} of ${expected} migrations ` +
        `and created ${after.tables} tables: is Prisma's schema engine installed and working?`,
    );
  }

  // The engine must render the schema before its "no difference" means anything.
  const control = prisma(
    ["migrate", "diff", "--from-empty", "--to-schema", SCHEMA, "--script"],
    scratchUrl,
  );
  if (control.code !== 0 || !/CREATE TABLE/i.test(control.out)) {
    throw new CheckFailed(
      `prisma migrate diff rendered no SQL for ${SCHEMA} (exit ${control.code}): ` +
        `the schema engine is missing or broken\n${control.out}`,
    );
  }

  const drift = prisma(
    ["migrate", "diff", "--from-config-datasource", "--to-schema", SCHEMA, "--exit-code"],
    scratchUrl,
  );
  if (drift.code === 2) {
    const script = prisma(
      ["migrate", "diff", "--from-config-datasource", "--to-schema", SCHEMA, "--script"],
      scratchUrl,
    );
    throw new CheckFailed(
      `${SCHEMA} and the migrations disagree; add a migration for this difference:\n${script.out}`,
    );
  }
  if (drift.code !== 0) {
    throw new CheckFailed(`prisma migrate diff failed (exit ${drift.code})\n${drift.out}`);
  }

  // Deploying again must be a no-op (nothing re-applied, nothing failing).
  deploy(scratchUrl, "second deploy");
  const again = await applied(scratchUrl);
  if (again.migrations !== expected) {
    throw new CheckFailed(`a second deploy changed the migration records (${again.migrations})`);
  }
}

async function main(): Promise<number> {
  const raw = process.env["DATABASE_URL"];
  if (raw === undefined || raw === "") {
    console.error("migrate-check: DATABASE_URL is not set");
    return 2;
  }
  const name = `migrate_check_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: raw });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
    const scratch = new URL(raw);
    scratch.pathname = `/${name}`;
    await check(scratch.toString());
    console.log("migrate-check: the migrations match prisma/schema.prisma");
    return 0;
  } catch (error) {
    if (!(error instanceof CheckFailed)) throw error;
    console.error(`migrate-check: ${error.message}`);
    return 1;
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.end();
  }
}

process.exitCode = await main();
