// The Node HTTP server under Fastify: the contract's connection timeouts, and
// JSON answers for requests Node refuses before Fastify sees them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

import type { FastifyServerFactory } from "fastify";

// What Fastify's types say a client error carries (Node adds rawPacket on parse errors).
interface ConnectionError extends Error {
  code?: string | undefined;
  rawPacket?: { data: number[] } | Buffer | undefined;
}
import type { Logger } from "pino";

import { methodLabel, type Metrics } from "./metrics.js";
import type { RouteTable } from "./routes.js";

/** Longer than the 60 s proxies keep idle upstream connections (see the contract). */
export const KEEP_ALIVE_TIMEOUT_MS = 75_000;
/** Request line and headers, and the whole (at most 64 KiB) body, must arrive within this. */
export const SLOW_CLIENT_TIMEOUT_MS = 10_000;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export const serverFactory = ((handler: Handler): Server =>
  createServer(
    {
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      headersTimeout: SLOW_CLIENT_TIMEOUT_MS,
      requestTimeout: SLOW_CLIENT_TIMEOUT_MS,
      // Node checks the two timeouts above on this interval (default 30 s).
      connectionsCheckingInterval: 1_000,
    },
    handler,
  )) as unknown as FastifyServerFactory;

/**
 * Fastify's clientErrorHandler: parse errors and slow clients, answered in
 * JSON and closed (the connection's state is unknown after a parse error).
 */
export function clientErrorHandler(
  logger: Logger,
  metrics: Metrics,
  routes: RouteTable,
): (error: ConnectionError, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    let status = 400;
    let body: Record<string, string> = {
      error: "bad_request",
      detail: "the request could not be parsed",
    };
    let extra = "";
    let logged = false;
    switch (error.code) {
      case "ERR_HTTP_REQUEST_TIMEOUT":
        status = 408;
        body = { error: "request_timeout", detail: "the request did not arrive in time" };
        break;
      case "HPE_HEADER_OVERFLOW":
        status = 431;
        body = { error: "headers_too_large", detail: "the request headers are too large" };
        break;
      case "HPE_INVALID_METHOD": {
        // Node's parser knows a fixed list of methods; any other token is still
        // a method to the contract: 405 on a known path, 404 elsewhere.
        const line = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\/\S*) HTTP\/1\.[01]\r?\n/.exec(
          rawText(error.rawPacket),
        );
        if (line?.[1] !== undefined && line[2] !== undefined) {
          const [method, target] = [line[1], line[2]];
          const match = routes.match(target);
          if (match === null) {
            status = 404;
            body = { error: "not_found", detail: "no such route" };
          } else {
            status = 405;
            body = {
              error: "method_not_allowed",
              detail: `allowed: ${match.methods.join(", ")}`,
            };
            extra = `Allow: ${match.methods.join(", ")}\r\n`;
          }
          metrics.observe(methodLabel(method), match?.template ?? "unmatched", status, 0);
          logger.info(
            { method: methodLabel(method), path: target.split("?", 1)[0], status, duration_ms: 0 },
            "request",
          );
          logged = true;
        }
        break;
      }
      default:
        break;
    }
    if (!logged) logger.info({ code: error.code, status }, "refused a request before routing");
    const payload = JSON.stringify(body);
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${reason(status)}\r\n` +
          "Content-Type: application/json\r\n" +
          `Content-Length: ${Buffer.byteLength(payload)}\r\n` +
          extra +
          "Connection: close\r\n\r\n" +
          payload,
      );
    }
    socket.destroySoon();
  };
}

function rawText(packet: ConnectionError["rawPacket"]): string {
  if (packet === undefined) return "";
  return (Buffer.isBuffer(packet) ? packet : Buffer.from(packet.data)).toString("latin1");
}

function reason(status: number): string {
  return (
    {
      400: "Bad Request",
      404: "Not Found",
      405: "Method Not Allowed",
      408: "Request Timeout",
      431: "Request Header Fields Too Large",
    }[status] ?? "Bad Request"
  );
}
