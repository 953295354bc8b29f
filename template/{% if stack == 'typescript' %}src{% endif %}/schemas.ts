// The API's JSON Schemas: the shared shapes (components of openapi.yaml) and
// each route's schema. The routes serialize their answers with them (a field
// the schema does not list never leaves the service) and @fastify/swagger
// builds the document from them (src/openapi.ts). Request input is checked by
// src/items/input.ts, which holds the contract's exact rules.
import {
  BIGINT_MAX,
  DESCRIPTION_MAX,
  LIMIT_DEFAULT,
  LIMIT_MAX,
  NAME_MAX,
  WHITESPACE,
} from "./items/input.js";

// The whitespace characters themselves in the patterns, not `\s` (each regex
// engine has its own set): every JSON Schema validator reads them the same way.
const NUL = "\u0000"; // PostgreSQL text cannot hold it
const NO_NUL = `^[^${NUL}]*$`;
/** Cursors are opaque; the document promises only their alphabet and length. */
export const CURSOR_PATTERN = "^[A-Za-z0-9._~-]+$";
const CURSOR_MAX = 200;
// A name is 1-NAME_MAX characters once trimmed, so the limit is in the pattern.
const NAME_PATTERN =
  `^[${WHITESPACE}]*[^${WHITESPACE}${NUL}]` +
  `(?:[^${NUL}]{0,${String(NAME_MAX - 2)}}[^${WHITESPACE}${NUL}])?[${WHITESPACE}]*$`;
const STORED_NAME_PATTERN = `^[^${WHITESPACE}${NUL}](?:[^${NUL}]*[^${WHITESPACE}${NUL}])?$`;

const ref = (name: string) => ({ $ref: `${name}#` });
const json = (schema: object) => ({ "application/json": { schema } });
const descriptionText = { type: "string", maxLength: DESCRIPTION_MAX, pattern: NO_NUL };

/** The shared shapes, registered with app.addSchema (their $id is their name). */
export const SHARED_SCHEMAS = [
  {
    $id: "Error",
    properties: {
      error: {
        type: "string",
        pattern: "^[a-z][a-z_]*$",
        title: "Error",
        description: "Machine-readable code, e.g. not_found, invalid_json, unavailable.",
      },
      detail: {
        type: "string",
        pattern: "\\S",
        title: "Detail",
        description: "Human-readable reason.",
      },
    },
    additionalProperties: false,
    type: "object",
    required: ["error", "detail"],
    title: "Error",
    description: "The body of every 4xx/5xx answer except 422.",
  },
  {
    $id: "FieldError",
    properties: {
      field: {
        type: "string",
        minLength: 1,
        title: "Field",
        description: "The offending field or parameter.",
      },
      reason: { type: "string", pattern: "\\S", title: "Reason" },
    },
    additionalProperties: false,
    type: "object",
    required: ["field", "reason"],
    title: "FieldError",
  },
  {
    $id: "ValidationError",
    properties: {
      error: { type: "string", const: "validation_error", title: "Error" },
      detail: { type: "string", pattern: "\\S", title: "Detail" },
      fields: { items: ref("FieldError"), type: "array", minItems: 1, title: "Fields" },
    },
    additionalProperties: false,
    type: "object",
    required: ["error", "detail", "fields"],
    title: "ValidationError",
    description: "The body of a 422: which inputs are wrong, and why.",
  },
  {
    $id: "ItemCreate",
    properties: {
      name: {
        type: "string",
        pattern: NAME_PATTERN,
        title: "Name",
        description: `1-${String(NAME_MAX)} characters after trimming surrounding whitespace (stored trimmed); no NUL.`,
      },
      description: { anyOf: [descriptionText, { type: "null" }], title: "Description" },
    },
    additionalProperties: false,
    type: "object",
    required: ["name"],
    title: "ItemCreate",
  },
  {
    $id: "ItemOut",
    properties: {
      id: { type: "integer", minimum: 1, format: "int64", title: "Id" },
      name: {
        type: "string",
        maxLength: NAME_MAX,
        minLength: 1,
        pattern: STORED_NAME_PATTERN,
        title: "Name",
      },
      description: { anyOf: [descriptionText, { type: "null" }], title: "Description" },
      created_at: {
        type: "string",
        format: "date-time",
        title: "Created At",
        description: "UTC (Z).",
      },
    },
    additionalProperties: false,
    type: "object",
    required: ["id", "name", "description", "created_at"],
    title: "ItemOut",
  },
  {
    $id: "ItemPage",
    properties: {
      items: { items: ref("ItemOut"), type: "array", maxItems: LIMIT_MAX, title: "Items" },
      limit: { type: "integer", maximum: LIMIT_MAX, minimum: 1, title: "Limit" },
      next: {
        anyOf: [
          { type: "string", maxLength: CURSOR_MAX, pattern: CURSOR_PATTERN },
          { type: "null" },
        ],
        title: "Next",
        description: "The `cursor` of the next page; null on the last page.",
      },
    },
    additionalProperties: false,
    type: "object",
    required: ["items", "limit", "next"],
    title: "ItemPage",
  },
  {
    $id: "Live",
    properties: { status: { type: "string", const: "ok", title: "Status" } },
    additionalProperties: false,
    type: "object",
    required: ["status"],
    title: "Live",
  },
  {
    $id: "NotReady",
    properties: {
      status: { type: "string", enum: ["unavailable", "shutting down"], title: "Status" },
      reason: { type: "string", minLength: 1, title: "Reason" },
    },
    additionalProperties: false,
    type: "object",
    required: ["status", "reason"],
    title: "NotReady",
  },
  {
    $id: "Ready",
    properties: { status: { type: "string", const: "ready", title: "Status" } },
    additionalProperties: false,
    type: "object",
    required: ["status"],
    title: "Ready",
  },
] as const;

const OK = "Successful Response";
const RETRY_AFTER = {
  "Retry-After": { description: "Seconds to wait before retrying.", type: "integer", minimum: 0 },
};

// Every error status an operation may declare, with its meaning.
const ERRORS = {
  400: { description: "The body is not valid JSON (`invalid_json`).", content: json(ref("Error")) },
  404: { description: "No such resource (`not_found`).", content: json(ref("Error")) },
  413: {
    description: "The body is over 64 KiB (`payload_too_large`).",
    content: json(ref("Error")),
  },
  415: {
    description: "Content-Type is not application/json (`unsupported_media_type`).",
    content: json(ref("Error")),
  },
  422: {
    description: "Invalid input (`validation_error`).",
    content: json(ref("ValidationError")),
  },
  503: {
    description: "The database is unavailable or too slow (`unavailable`); retry later.",
    headers: RETRY_AFTER,
    content: json(ref("Error")),
  },
} as const;

type ErrorStatus = keyof typeof ERRORS;

function errors(...statuses: ErrorStatus[]): Partial<typeof ERRORS> {
  return Object.fromEntries(statuses.map((status) => [status, ERRORS[status]]));
}

// Schemathesis builds its requests from these, so the documented parameter
// names are the ones input.ts reads.
const LIST_QUERY = {
  type: "object",
  properties: {
    limit: {
      type: "integer",
      maximum: LIMIT_MAX,
      minimum: 1,
      default: LIMIT_DEFAULT,
      title: "Limit",
    },
    cursor: {
      type: "string",
      minLength: 1,
      maxLength: CURSOR_MAX,
      pattern: CURSOR_PATTERN,
      description: "The `next` of an earlier page (opaque).",
      title: "Cursor",
    },
  },
};

const ITEM_ID = {
  type: "object",
  properties: {
    id: { type: "integer", maximum: BIGINT_MAX, exclusiveMinimum: 0, title: "Id" },
  },
  required: ["id"],
};

const METRICS_FORMATS = {
  "text/plain": { schema: { type: "string" } },
  "application/openmetrics-text": { schema: { type: "string" } },
};

/** Each route's schema, by operationId; the links say how answers chain. */
export const ROUTES = {
  getLiveness: {
    schema: {
      operationId: "getLiveness",
      summary: "Liveness (no database)",
      response: { 200: { description: OK, content: json(ref("Live")) } },
    },
  },
  getReadiness: {
    schema: {
      operationId: "getReadiness",
      summary: "Readiness: the database answers",
      response: {
        200: { description: OK, content: json(ref("Ready")) },
        503: {
          description: "Shutting down, or the database is unavailable",
          content: json(ref("NotReady")),
        },
      },
    },
  },
  getMetrics: {
    schema: {
      operationId: "getMetrics",
      summary: "Prometheus metrics",
      response: { 200: { description: "Prometheus text format", content: METRICS_FORMATS } },
    },
  },
  createItem: {
    schema: {
      tags: ["items"],
      operationId: "createItem",
      summary: "Create an item",
      body: ref("ItemCreate"),
      response: {
        201: {
          description: OK,
          headers: {
            Location: {
              description: "The new item's path.",
              type: "string",
              pattern: "^/items/[1-9][0-9]*$",
            },
          },
          content: json(ref("ItemOut")),
        },
        ...errors(400, 413, 415, 422, 503),
      },
    },
    links: {
      201: { GetItem: { operationId: "getItem", parameters: { id: "$response.body#/id" } } },
    },
  },
  listItems: {
    schema: {
      tags: ["items"],
      operationId: "listItems",
      summary: "List items by id, one page at a time",
      querystring: LIST_QUERY,
      response: {
        200: { description: OK, content: json(ref("ItemPage")) },
        ...errors(422, 503),
      },
    },
    links: {
      200: {
        NextPage: { operationId: "listItems", parameters: { cursor: "$response.body#/next" } },
      },
    },
  },
  getItem: {
    schema: {
      tags: ["items"],
      operationId: "getItem",
      summary: "Get an item by id",
      params: ITEM_ID,
      response: {
        200: { description: OK, content: json(ref("ItemOut")) },
        ...errors(404, 422, 503),
      },
    },
  },
};
