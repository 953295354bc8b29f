// Bounded database work: a lock or an outage gives 503 within DB_TIMEOUT_MS, and
// recovery needs no restart; start-up never migrates.
import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { buildApp } from "../../src/app.js";
import { connectDatabase } from "../../src/db.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { scratchDatabase, type ScratchDatabase } from "./database.js";

const TIMEOUT_MS = 500;
let scratch: ScratchDatabase;

beforeAll(async () => {
  scratch = await scratchDatabase({ migrated: true });
});

afterAll(async () => {
  await scratch.drop();
});

function appOn(target: ScratchDatabase["target"]) {
  const db = connectDatabase({ target, timeoutMs: TIMEOUT_MS });
  const app = buildApp({ db, logger: createLogger("fatal"), metrics: createMetrics() });
  return {
    app,
    close: async () => {
      await app.close();
      await db.close(1000);
    },
  };
}

/** A TCP relay to PostgreSQL that can be cut and restored. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly host: string,
    private readonly upstreamPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.upstreamPort, this.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

describe("bounded database work", () => {
  it("answers 503 with Retry-After within DB_TIMEOUT_MS + 1 s while items is locked", async () => {
    const { app, close } = appOn(scratch.target);
    const holder = new pg.Client({ connectionString: scratch.url });
    await holder.connect();
    try {
      await holder.query("BEGIN");
      await holder.query("LOCK TABLE items IN ACCESS EXCLUSIVE MODE");
      for (const request of [
        { method: "GET" as const, url: "/items" },
        { method: "GET" as const, url: "/items/1" },
        { method: "POST" as const, url: "/items", payload: { name: "blocked" } },
      ]) {
        const started = Date.now();
        const response = await app.inject(request);
        expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1000);
        expect(response.statusCode, response.body).toBe(503);
        expect(response.json()).toMatchObject({ error: "unavailable" });
        expect(response.headers["retry-after"]).toBe("1");
      }
    } finally {
      await holder.query("ROLLBACK");
      await holder.end();
      await close();
    }
  });

  it("answers 503 during an outage and recovers without a restart", async () => {
    const relay = new Relay(scratch.target.host, scratch.target.port);
    await relay.start();
    const { app, close } = appOn({ ...scratch.target, host: "127.0.0.1", port: relay.port });
    try {
      expect((await app.inject("/readyz")).statusCode).toBe(200);
      await relay.stop();
      const ready = await app.inject("/readyz");
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ status: "unavailable", reason: "database unreachable" });
      expect((await app.inject("/items")).statusCode).toBe(503);
      await relay.start();
      expect((await app.inject("/readyz")).json()).toEqual({ status: "ready" });
      expect(
        (await app.inject({ method: "POST", url: "/items", payload: { name: "after" } }))
          .statusCode,
      ).toBe(201);
    } finally {
      await close();
      await relay.stop().catch(() => undefined);
    }
  });

  it("never creates the schema on start-up", async () => {
    const empty = await scratchDatabase({ migrated: false });
    const { app, close } = appOn(empty.target);
    try {
      expect((await app.inject("/readyz")).statusCode).toBe(200);
      const tables = await empty.query(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'",
      );
      expect(tables.rows).toEqual([{ n: 0 }]);
    } finally {
      await close();
      await empty.drop();
    }
  });
});
