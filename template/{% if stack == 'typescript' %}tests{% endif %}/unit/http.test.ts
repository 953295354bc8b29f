// The HTTP contract without a database: bodies, statuses, metrics and access logs.
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { buildApp, type App } from "../../src/app.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics, type Metrics } from "../../src/metrics.js";
import { FakeDatabase } from "./fake-db.js";

let db: FakeDatabase;
let metrics: Metrics;
let logs: string[];
let shuttingDown: boolean;
let app: App;

beforeEach(async () => {
  db = new FakeDatabase();
  metrics = createMetrics();
  logs = [];
  shuttingDown = false;
  const logger = createLogger("info", { write: (line: string) => logs.push(line) });
  app = buildApp({ db, logger, metrics, isShuttingDown: () => shuttingDown });
  await app.ready();
});

afterEach(async () => {
  await app.close();
});

const json = { "content-type": "application/json" };

function expectError(
  response: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  code: string,
): void {
  expect(response.statusCode).toBe(status);
  expect(String(response.headers["content-type"])).toMatch(/^application\/json/);
  const body = JSON.parse(response.body) as { error: string; detail: string };
  expect(body.error).toBe(code);
  expect(body.detail.trim()).not.toBe("");
}

describe("items", () => {
  it("creates, fetches and pages through items", async () => {
    for (const name of ["a", "b", "c"]) {
      const created = await app.inject({
        method: "POST",
        url: "/items",
        headers: json,
        payload: { name },
      });
      expect(created.statusCode).toBe(201);
      expect(created.headers.location).toBe(`/items/${String(created.json<{ id: number }>().id)}`);
    }
    const first = await app.inject("/items?limit=2");
    const page = first.json<{ items: { name: string }[]; limit: number; next: string | null }>();
    expect(page.items.map((i) => i.name)).toEqual(["a", "b"]);
    expect(page.limit).toBe(2);
    expect(page.next).not.toBeNull();
    const second = await app.inject(`/items?limit=2&cursor=${String(page.next)}`);
    expect(second.json()).toMatchObject({ items: [{ name: "c" }], limit: 2, next: null });
  });

  it("names a missing id in the 404", async () => {
    const response = await app.inject("/items/987654321");
    expectError(response, 404, "not_found");
    expect(response.body).toContain("987654321");
  });

  it.each(["NaN", "Infinity", "-Infinity", '{"name": NaN}', "", '{"name": "x"} trailing'])(
    "answers 400 to the non-JSON body %j",
    async (payload) => {
      const response = await app.inject({ method: "POST", url: "/items", headers: json, payload });
      expectError(response, 400, "invalid_json");
    },
  );

  it.each([undefined, "text/plain", "application/xml"])(
    "answers 415 to content type %s",
    async (type) => {
      const headers = type === undefined ? {} : { "content-type": type };
      const response = await app.inject({
        method: "POST",
        url: "/items",
        headers,
        payload: '{"name":"x"}',
      });
      expectError(response, 415, "unsupported_media_type");
    },
  );

  it("answers 413 to a body over 64 KiB", async () => {
    const payload = `{"name": "padded"${" ".repeat(64 * 1024)}}`;
    const response = await app.inject({ method: "POST", url: "/items", headers: json, payload });
    expectError(response, 413, "payload_too_large");
  });

  it("answers 503 with Retry-After while the database is down", async () => {
    db.down = true;
    for (const response of [
      await app.inject("/items"),
      await app.inject("/items/1"),
      await app.inject({ method: "POST", url: "/items", headers: json, payload: { name: "x" } }),
    ]) {
      expectError(response, 503, "unavailable");
      expect(response.headers["retry-after"]).toBe("1");
    }
    expect((await app.inject("/readyz")).json()).toEqual({
      status: "unavailable",
      reason: "database unreachable",
    });
  });
});

describe("routing", () => {
  it("answers 404 JSON for unknown paths and 405 JSON with Allow for wrong methods", async () => {
    expectError(await app.inject("/nope"), 404, "not_found");
    expectError(await app.inject("/ITEMS"), 404, "not_found");
    const wrong = await app.inject({ method: "DELETE", url: "/items/1" });
    expectError(wrong, 405, "method_not_allowed");
    expect(wrong.headers.allow).toBe("GET, HEAD");
    // Fastify refuses a QUERY without Content-Type before routing; the path decides.
    const query = await app.inject({ method: "QUERY", url: "/readyz" });
    expectError(query, 405, "method_not_allowed");
    expectError(await app.inject({ method: "QUERY", url: "/nope" }), 404, "not_found");
  });

  it("answers HEAD like GET without a body", async () => {
    const get = await app.inject("/healthz");
    const head = await app.inject({ method: "HEAD", url: "/healthz" });
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe("");
    expect(head.headers["content-type"]).toBe(get.headers["content-type"]);
  });

  it("fails readiness at once after SIGTERM while liveness holds", async () => {
    shuttingDown = true;
    const ready = await app.inject("/readyz");
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: "shutting down", reason: "SIGTERM received" });
    expect((await app.inject("/healthz")).statusCode).toBe(200);
  });
});

describe("telemetry", () => {
  it("counts by route template and collapses unknown paths", async () => {
    await app.inject("/items/12345");
    await app.inject("/some/raw/path");
    await app.inject({ method: "HEAD", url: "/items" });
    const text = await metrics.registry.metrics();
    expect(text).toContain('http_requests_total{method="GET",route="/items/{id}",status="404"} 1');
    expect(text).toContain('http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(text).toContain('http_requests_total{method="HEAD",route="/items",status="200"} 1');
    expect(text).not.toContain("/some/raw/path");
    expect(text).toContain("http_request_duration_seconds_bucket");
  });

  it("writes one JSON access line per request", async () => {
    await app.inject("/healthz?probe=1");
    const access = logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((r) => r["path"] === "/healthz");
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ level: "info", method: "GET", status: 200 });
    expect(typeof access[0]?.["ts"]).toBe("string");
    expect(typeof access[0]?.["msg"]).toBe("string");
    expect(typeof access[0]?.["duration_ms"]).toBe("number");
  });
});
