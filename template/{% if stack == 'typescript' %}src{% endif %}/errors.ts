// The contract's error bodies: {"error", "detail"} (+ "fields" on 422).
export interface FieldError {
  field: string;
  reason: string;
}

export interface ErrorBody {
  error: string;
  detail: string;
  fields?: FieldError[];
}

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    readonly detail: string,
    readonly fields?: FieldError[],
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail);
    this.name = "HttpError";
  }

  body(): ErrorBody {
    return this.fields === undefined
      ? { error: this.code, detail: this.detail }
      : { error: this.code, detail: this.detail, fields: this.fields };
  }
}

export const invalidJson = (detail: string): HttpError =>
  new HttpError(400, "invalid_json", detail);

export const validationError = (fields: FieldError[]): HttpError =>
  new HttpError(
    422,
    "validation_error",
    fields.map((f) => `${f.field}: ${f.reason}`).join("; "),
    fields,
  );

export const notFound = (detail: string): HttpError => new HttpError(404, "not_found", detail);

export const methodNotAllowed = (method: string, allowed: readonly string[]): HttpError =>
  new HttpError(
    405,
    "method_not_allowed",
    `${method} is not allowed here; allowed: ${allowed.join(", ")}`,
    undefined,
    { allow: allowed.join(", ") },
  );

export const unsupportedMediaType = (): HttpError =>
  new HttpError(415, "unsupported_media_type", "the body must be sent as application/json");

export const payloadTooLarge = (limit: number): HttpError =>
  new HttpError(413, "payload_too_large", `the body is larger than ${limit} bytes`);

/** Retry-After: 1 tells clients and proxies the outage may be brief. */
export const unavailable = (detail: string): HttpError =>
  new HttpError(503, "unavailable", detail, undefined, { "retry-after": "1" });
