// Entry point: configuration, the server, and the contract's SIGTERM sequence.
import { setTimeout as sleep } from "node:timers/promises";

import { buildApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { connectDatabase, withDeadline } from "./db.js";
import { createLogger } from "./logger.js";
import { createMetrics } from "./metrics.js";

/** After the grace period, in-flight requests get this long before the process exits. */
const DRAIN_MS = 5_000;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    createLogger("info").fatal(error.message);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  process.on("unhandledRejection", (reason) => {
    logger.fatal({ err: reason }, "unhandled promise rejection");
    process.exit(1);
  });

  let shuttingDown = false;
  const db = connectDatabase({
    target: config.database,
    timeoutMs: config.dbTimeoutMs,
    onPoolError: (error) => {
      logger.warn({ err: error }, "idle database connection failed");
    },
  });
  const app = buildApp({
    db,
    logger,
    metrics: createMetrics(),
    isShuttingDown: () => shuttingDown,
  });
  await app.listen({ port: config.port, host: config.host });

  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info(
      { signal, grace_seconds: config.shutdownGraceSeconds },
      "shutting down: readiness is now false",
    );
    // Load balancers see the failing readiness and stop sending new requests.
    await sleep(config.shutdownGraceSeconds * 1000);
    const started = Date.now();
    // Stops accepting connections; in-flight requests finish (each bounded by DB_TIMEOUT_MS).
    const closing = app.close();
    const drained = await withDeadline(closing, DRAIN_MS, "drain").then(
      () => true,
      () => false,
    );
    if (!drained) {
      logger.warn("requests still in flight after the drain period are cut");
      // Logged and counted as 499 now: the process ends before their sockets'
      // close events would run.
      app.recordCutRequests();
      app.server.closeAllConnections();
      await withDeadline(closing, 1_000, "cut").catch(() => undefined);
    }
    await db.close(Math.max(DRAIN_MS - (Date.now() - started), 200));
    logger.info("stopped");
    process.exit(0);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      void shutdown(signal);
    });
  }
}

await main();
