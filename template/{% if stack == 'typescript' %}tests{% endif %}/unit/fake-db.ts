// An in-memory Database for HTTP tests that need no PostgreSQL.
import { DatabaseUnavailable, type Database, type Item, type NewItem } from "../../src/db.js";

export class FakeDatabase implements Database {
  items: Item[] = [];
  down = false;

  private guard(): void {
    if (this.down) throw new DatabaseUnavailable("the database is unavailable");
  }

  create(item: NewItem): Promise<Item> {
    this.guard();
    const created = { id: this.items.length + 1, ...item, created_at: new Date().toISOString() };
    this.items.push(created);
    return Promise.resolve(created);
  }

  get(id: bigint): Promise<Item | null> {
    this.guard();
    return Promise.resolve(this.items.find((item) => BigInt(item.id) === id) ?? null);
  }

  page(after: bigint, limit: number): Promise<Item[]> {
    this.guard();
    return Promise.resolve(this.items.filter((item) => BigInt(item.id) > after).slice(0, limit));
  }

  ping(): Promise<void> {
    this.guard();
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
