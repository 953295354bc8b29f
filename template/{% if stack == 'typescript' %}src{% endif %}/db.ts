// The database: a pg pool bounded by DB_TIMEOUT_MS, Prisma on top of it through
// the driver adapter, and the one place database failures become "unavailable".
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";

import type { DatabaseTarget } from "./config.js";
import { PrismaClient } from "./generated/prisma/client.js";

export interface Item {
  id: number;
  name: string;
  description: string | null;
  created_at: string;
}

export interface NewItem {
  name: string;
  description: string | null;
}

export interface Database {
  create(item: NewItem): Promise<Item>;
  get(id: bigint): Promise<Item | null>;
  /** Up to `limit` items with an id above `after`, by id ascending. */
  page(after: bigint, limit: number): Promise<Item[]>;
  /** Resolves when `SELECT 1` answers within `timeoutMs`. */
  ping(timeoutMs: number): Promise<void>;
  /** Returns within `timeoutMs` even when the database hangs. */
  close(timeoutMs: number): Promise<void>;
}

/** The database failed or took longer than allowed: a 503, never a 500. */
export class DatabaseUnavailable extends Error {
  override name = "DatabaseUnavailable";
}

export interface DatabaseOptions {
  target: DatabaseTarget;
  timeoutMs: number;
  onPoolError?: (error: Error) => void;
}

export function connectDatabase({ target, timeoutMs, onPoolError }: DatabaseOptions): Database {
  const pool = new pg.Pool({
    ...target,
    max: 10,
    // The longest wait for a pool connection (and for a new one to connect).
    connectionTimeoutMillis: timeoutMs,
    idleTimeoutMillis: 30_000,
    // Sent at connect time: PostgreSQL itself stops long statements and lock waits.
    statement_timeout: timeoutMs,
    lock_timeout: timeoutMs,
    keepAlive: true,
  });
  // An idle connection dropped by the server must not crash the process.
  pool.on("error", (error) => {
    onPoolError?.(error);
  });
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });

  // statement_timeout cannot help when the server never answers (a hung
  // network path): the deadline here bounds the request either way.
  const bounded = <T>(work: () => Promise<T>): Promise<T> =>
    withDeadline(work(), timeoutMs, "the database did not answer within DB_TIMEOUT_MS").catch(
      (error: unknown) => {
        throw error instanceof DatabaseUnavailable
          ? error
          : new DatabaseUnavailable("the database is unavailable", { cause: error });
      },
    );

  return {
    create: (item) => bounded(async () => toItem(await prisma.item.create({ data: item }))),
    get: (id) =>
      bounded(async () => {
        const row = await prisma.item.findUnique({ where: { id } });
        return row === null ? null : toItem(row);
      }),
    page: (after, limit) =>
      bounded(async () => {
        const rows = await prisma.item.findMany({
          where: { id: { gt: after } },
          orderBy: { id: "asc" },
          take: limit,
        });
        return rows.map(toItem);
      }),
    ping: async (pingTimeoutMs) => {
      await withDeadline(pool.query("SELECT 1"), pingTimeoutMs, "SELECT 1 timed out");
    },
    close: async (closeTimeoutMs) => {
      // Work still blocked on a hung database is abandoned, not waited for.
      await withDeadline(
        prisma.$disconnect().then(async () => {
          await pool.end();
        }),
        closeTimeoutMs,
        "closing the pool timed out",
      ).catch(() => undefined);
    },
  };
}

interface ItemRow {
  id: bigint;
  name: string;
  description: string | null;
  createdAt: Date;
}

function toItem(row: ItemRow): Item {
  return {
    id: Number(row.id),
    name: row.name,
    description: row.description,
    created_at: row.createdAt.toISOString(),
  };
}

export function withDeadline<T>(work: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new DatabaseUnavailable(why));
    }, ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => {
    clearTimeout(timer);
  });
}
