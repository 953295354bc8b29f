// What only a real socket shows: timeouts, keep-alive and requests Node refuses itself.
import type { AddressInfo } from "node:net";
import { connect } from "node:net";

import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { buildApp, type App } from "../../src/app.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics, type Metrics } from "../../src/metrics.js";
import { KEEP_ALIVE_TIMEOUT_MS, SLOW_CLIENT_TIMEOUT_MS } from "../../src/server.js";
import { FakeDatabase } from "./fake-db.js";

let app: App;
let db: FakeDatabase;
let metrics: Metrics;
let port: number;

beforeAll(async () => {
  metrics = createMetrics();
  db = new FakeDatabase();
  app = buildApp({ db, logger: createLogger("warn"), metrics });
  await app.listen({ port: 0, host: "127.0.0.1" });
  port = (app.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await app.close();
});

function exchange(raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(raw);
    });
    let data = "";
    socket.on("data", (chunk) => (data += chunk.toString("latin1")));
    socket.on("end", () => {
      resolve(data);
    });
    socket.on("error", reject);
  });
}

describe("the HTTP server", () => {
  it("keeps idle connections longer than proxies do and bounds slow clients", () => {
    expect(app.server.keepAliveTimeout).toBeGreaterThanOrEqual(65_000);
    expect(app.server.headersTimeout).toBe(SLOW_CLIENT_TIMEOUT_MS);
    expect(app.server.requestTimeout).toBe(SLOW_CLIENT_TIMEOUT_MS);
    expect(KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(65_000);
  });

  it("answers a method Node does not know with a JSON 405 on a known path", async () => {
    const answer = await exchange("XFROB /items HTTP/1.1\r\nHost: t\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 405 /);
    expect(answer).toMatch(/\r\nContent-Type: application\/json\r\n/);
    expect(answer).toContain('"error":"method_not_allowed"');
    const text = await metrics.registry.metrics();
    expect(text).toContain('http_requests_total{method="other",route="/items",status="405"} 1');
    expect(text).not.toContain("XFROB");
  });

  it("answers a POST over a real socket when the database fails", async () => {
    db.down = true;
    try {
      const body = '{"name": "x"}';
      const answer = await exchange(
        "POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" +
          `Content-Length: ${String(body.length)}\r\nConnection: close\r\n\r\n${body}`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 503 /);
      expect(answer).toContain('"error":"unavailable"');
    } finally {
      db.down = false;
    }
  });

  it("answers a garbage request line with JSON", async () => {
    const answer = await exchange("\x01\x02 nonsense\r\n\r\n");
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"error":"bad_request"');
  });
});
