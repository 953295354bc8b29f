// Scratch databases on DATABASE_URL's server, so the tests never touch the
// data in DATABASE_URL's own database. They are migrated by running each
// committed prisma/migrations/*/migration.sql in order, as `prisma migrate
// deploy` does (without its bookkeeping table); `make migrate-check` covers
// Prisma's own deploy.
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import pg from "pg";

import { parseDatabaseUrl, type DatabaseTarget } from "../../src/config.js";

const MIGRATIONS = join(import.meta.dirname, "..", "..", "prisma", "migrations");

export interface ScratchDatabase {
  url: string;
  target: DatabaseTarget;
  query(sql: string): Promise<pg.QueryResult>;
  drop(): Promise<void>;
}

function serverUrl(): string {
  const url = process.env["DATABASE_URL"];
  if (url === undefined || url === "") {
    throw new Error(
      "DATABASE_URL is not set: integration tests need PostgreSQL (docker compose up -d db)",
    );
  }
  return url;
}

export async function scratchDatabase(options: { migrated: boolean }): Promise<ScratchDatabase> {
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  const name = `test_${randomBytes(6).toString("hex")}`;
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  if (options.migrated) {
    const dirs = readdirSync(MIGRATIONS, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    for (const dir of dirs) {
      await client.query(readFileSync(join(MIGRATIONS, dir, "migration.sql"), "utf8"));
    }
  }
  return {
    url: url.toString(),
    target: parseDatabaseUrl(url.toString()),
    query: (sql) => client.query(sql),
    drop: async () => {
      await client.end();
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}
