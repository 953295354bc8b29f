// The HTTP application: routes, the contract's JSON errors, access logs and metrics.
import swagger from "@fastify/swagger";
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Logger } from "pino";

import { DatabaseUnavailable, type Database } from "./db.js";
import {
  HttpError,
  invalidJson,
  methodNotAllowed,
  notFound,
  payloadTooLarge,
  unavailable,
  unsupportedMediaType,
} from "./errors.js";
import { encodeCursor, parseId, parseListQuery, parseNewItem } from "./items/input.js";
import { CLIENT_CLOSED, UNMATCHED, type Metrics } from "./metrics.js";
import { SWAGGER_OPTIONS } from "./openapi.js";
import { RouteTable, routeTemplate } from "./routes.js";
import { ROUTES, SHARED_SCHEMAS } from "./schemas.js";
import { clientErrorHandler, serverFactory } from "./server.js";

export const BODY_LIMIT = 64 * 1024;
const READY_TIMEOUT_MS = 2000;

export interface AppDeps {
  db: Database;
  logger: Logger;
  metrics: Metrics;
  routes?: RouteTable;
  /** True once SIGTERM arrived: readiness fails, everything else still serves. */
  isShuttingDown?: () => boolean;
}

declare module "fastify" {
  interface FastifyInstance {
    /** Log and count every unanswered request as 499: shutdown is about to cut them. */
    recordCutRequests(): void;
  }
  interface FastifyRequest {
    /** The route label for metrics when no route matched (405s). */
    routeLabel: string | undefined;
  }
}

export type App = ReturnType<typeof buildApp>;

// The return type is inferred: Fastify typed with pino's Logger.

export function buildApp(deps: AppDeps) {
  const { db, logger, metrics } = deps;
  const routes = deps.routes ?? new RouteTable();
  const isShuttingDown = deps.isShuttingDown ?? (() => false);
  const app = Fastify({
    loggerInstance: logger,
    // One access line per request, written below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    serverFactory,
    clientErrorHandler: clientErrorHandler(logger, metrics, routes),
  });

  app.decorateRequest("routeLabel", undefined);
  // The route schemas document the API and serialize its answers; input is
  // checked by items/input.ts alone, in the contract's terms (400 before 422,
  // code-point lengths, bigint ids, every wrong field named), which Ajv's
  // coercing validation and error shapes would not match.
  app.setValidatorCompiler(() => (value: unknown) => ({ value }));
  // Before the routes: @fastify/swagger collects them as they are added.
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  void app.register(swagger, SWAGGER_OPTIONS);
  // Requests without an answer yet, each with its recorder (see onRequest).
  const unanswered = new Set<(finished: boolean) => void>();
  app.decorate("recordCutRequests", () => {
    for (const record of [...unanswered]) record(false);
  });
  app.addHook("onRoute", (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    routes.add(route.url, methods);
  });

  // Only JSON bodies, parsed strictly: NaN/Infinity and trailing data are 400.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/json", { parseAs: "string" }, (_req, text, done) => {
    try {
      done(null, JSON.parse(text as string));
    } catch {
      done(invalidJson("the body is not valid JSON"), undefined);
    }
  });

  app.addHook("onRequest", (request, reply, next) => {
    const started = process.hrtime.bigint();
    let recorded = false;
    // "finish": the response went out; "close" alone: the client hung up first.
    const record = (finished: boolean): void => {
      if (recorded) return;
      recorded = true;
      unanswered.delete(record);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const status = finished ? reply.statusCode : CLIENT_CLOSED;
      const route =
        request.routeLabel ??
        (request.routeOptions.url === undefined
          ? UNMATCHED
          : routeTemplate(request.routeOptions.url));
      metrics.observe(request.method, route, status, seconds);
      request.log.info(
        {
          method: request.method,
          path: request.url.split("?", 1)[0],
          status,
          duration_ms: Math.round(seconds * 1e6) / 1e3,
        },
        status === CLIENT_CLOSED ? "client closed the connection" : "request",
      );
    };
    unanswered.add(record);
    reply.raw.once("finish", () => {
      record(true);
    });
    reply.raw.once("close", () => {
      record(false);
    });
    next();
  });

  // No route serves this method on this path: 405 on a known path, else 404.
  const unrouted = (request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const match = routes.match(request.url);
    if (match === null) {
      return sendError(reply, notFound(`no route for ${request.url.split("?", 1)[0]}`));
    }
    request.routeLabel = match.template;
    return sendError(reply, methodNotAllowed(request.method, match.methods));
  };
  app.setNotFoundHandler(unrouted);

  app.setErrorHandler((error: FastifyError | Error, request, reply) => {
    // The client is gone (the request stream itself ends destroyed once its
    // body is read, so ask the socket): the close listener counts a 499.
    if (request.raw.socket.destroyed) return;
    const known = toHttpError(error);
    // Routing decides first: Fastify checks the body and its Content-Type (a
    // QUERY must have one) before the not-found handler runs.
    if (request.is404 && (known?.statusCode === 400 || known?.statusCode === 415)) {
      return unrouted(request, reply);
    }
    if (known !== null) {
      if (known.statusCode === 503) request.log.warn({ err: error }, "database unavailable");
      return sendError(reply, known);
    }
    request.log.error({ err: error }, "unhandled error");
    return sendError(reply, new HttpError(500, "internal_error", "an unexpected error occurred"));
  });

  // A plugin of its own, so that @fastify/swagger (registered above) is loaded
  // when the routes are added and describes each of them.
  void app.register((api, _options, done) => {
    api.get("/healthz", ROUTES.getLiveness, (_request, reply) => reply.send({ status: "ok" }));

    api.get("/readyz", ROUTES.getReadiness, async (_request, reply) => {
      if (isShuttingDown()) {
        return reply.code(503).send({ status: "shutting down", reason: "SIGTERM received" });
      }
      try {
        await db.ping(READY_TIMEOUT_MS);
        return { status: "ready" };
      } catch {
        return reply.code(503).send({ status: "unavailable", reason: "database unreachable" });
      }
    });

    api.get("/metrics", ROUTES.getMetrics, async (_request, reply) => {
      const body = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(body);
    });

    api.post("/items", ROUTES.createItem, async (request, reply) => {
      if (!isJson(request)) throw unsupportedMediaType();
      // Fastify skips the parser for an empty body; it is still not JSON.
      if (request.body === undefined) throw invalidJson("the body is empty");
      const item = await db.create(parseNewItem(request.body));
      return reply.code(201).header("location", `/items/${item.id}`).send(item);
    });

    api.get("/items", ROUTES.listItems, async (request) => {
      const { limit, after } = parseListQuery(request.query as Record<string, unknown>);
      // One row more than the page says whether another page follows.
      const rows = await db.page(after, limit + 1);
      const items = rows.slice(0, limit);
      const last = items.at(-1);
      return { items, limit, next: rows.length > limit && last ? encodeCursor(last.id) : null };
    });

    api.get<{ Params: { id: string } }>("/items/:id", ROUTES.getItem, async (request) => {
      const id = parseId(request.params.id);
      const item = await db.get(id);
      if (item === null) throw notFound(`item ${id} does not exist`);
      return item;
    });
    done();
  });

  return app;
}

function isJson(request: FastifyRequest): boolean {
  const type = request.headers["content-type"];
  return type !== undefined && type.split(";", 1)[0]?.trim().toLowerCase() === "application/json";
}

function sendError(reply: FastifyReply, error: HttpError): FastifyReply {
  return reply.code(error.statusCode).headers(error.headers).send(error.body());
}

/** Fastify's own refusals and the database's failures in the contract's terms. */
function toHttpError(error: FastifyError | Error): HttpError | null {
  if (error instanceof HttpError) return error;
  if (error instanceof DatabaseUnavailable) return unavailable(error.message);
  const code = "code" in error ? error.code : undefined;
  switch (code) {
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return unsupportedMediaType();
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      // The rest of the body is never read: the connection closes after this answer.
      return new HttpError(
        413,
        "payload_too_large",
        payloadTooLarge(BODY_LIMIT).detail,
        undefined,
        {
          connection: "close",
        },
      );
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return invalidJson("the body is not valid JSON");
    default:
      break;
  }
  const status = "statusCode" in error ? error.statusCode : undefined;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new HttpError(status, "bad_request", error.message);
  }
  return null;
}
