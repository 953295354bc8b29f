// The items API on a real PostgreSQL, through Prisma and the pg driver adapter.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { buildApp, type App } from "../../src/app.js";
import { connectDatabase, type Database } from "../../src/db.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { scratchDatabase, type ScratchDatabase } from "./database.js";

interface Item {
  id: number;
  name: string;
  description: string | null;
  created_at: string;
}
interface Page {
  items: Item[];
  limit: number;
  next: string | null;
}

let scratch: ScratchDatabase;
let db: Database;
let app: App;

beforeAll(async () => {
  scratch = await scratchDatabase({ migrated: true });
  db = connectDatabase({ target: scratch.target, timeoutMs: 2000 });
  app = buildApp({ db, logger: createLogger("warn"), metrics: createMetrics() });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await db.close(2000);
  await scratch.drop();
});

beforeEach(async () => {
  await scratch.query("TRUNCATE items RESTART IDENTITY");
});

async function create(name: string, description?: string | null): Promise<Item> {
  const response = await app.inject({
    method: "POST",
    url: "/items",
    payload: { name, description },
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json<Item>();
}

describe("items on PostgreSQL", () => {
  it("stores the trimmed item and reads it back in UTC", async () => {
    const item = await create("  Zoë ☃ 🚀  ", "d".repeat(2000));
    expect(item).toMatchObject({ id: 1, name: "Zoë ☃ 🚀", description: "d".repeat(2000) });
    expect(item.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect((await app.inject("/items/1")).json()).toEqual(item);
    const rows = await scratch.query("SELECT name FROM items");
    expect(rows.rows).toEqual([{ name: "Zoë ☃ 🚀" }]);
  });

  it("follows `next` through every item exactly once, in id order", async () => {
    const created: Item[] = [];
    for (let n = 0; n < 25; n += 1) created.push(await create(`item ${String(n)}`));
    const seen: Item[] = [];
    let url: string | null = "/items?limit=7";
    let pages = 0;
    while (url !== null) {
      const page: Page = (await app.inject(url)).json<Page>();
      expect(page.limit).toBe(7);
      seen.push(...page.items);
      pages += 1;
      url = page.next === null ? null : `/items?limit=7&cursor=${page.next}`;
    }
    expect(pages).toBe(4);
    expect(seen).toEqual(created);
  });

  it("ends a listing whose last page is full with next = null", async () => {
    for (let n = 0; n < 4; n += 1) await create(`item ${String(n)}`);
    const first = (await app.inject("/items?limit=2")).json<Page>();
    const last = (await app.inject(`/items?limit=2&cursor=${String(first.next)}`)).json<Page>();
    expect(last.items).toHaveLength(2);
    expect(last.next).toBeNull();
  });

  it("answers 404 for a missing item and 422 for an id beyond bigint", async () => {
    expect((await app.inject("/items/42")).statusCode).toBe(404);
    expect((await app.inject("/items/99999999999999999999")).statusCode).toBe(422);
  });
});
