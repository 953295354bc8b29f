// Prometheus metrics with bounded label values: route templates, a fixed method set.
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
export const UNMATCHED = "unmatched";
/** Recorded for requests whose client hung up before the response (nginx's convention). */
export const CLIENT_CLOSED = 499;

export interface Metrics {
  registry: Registry;
  observe(method: string, route: string, status: number, seconds: number): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests by method, route template and status.",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request latency by method and route template.",
    labelNames: ["method", "route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    registry,
    observe(method, route, status, seconds) {
      const label = methodLabel(method);
      requests.inc({ method: label, route, status: String(status) });
      duration.observe({ method: label, route }, seconds);
    },
  };
}

/** Any token is a method to a client: unknown ones share one label value. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : "other";
}
