// Request input for the items resource: every rule of the contract, checked
// here so that nothing a client sends reaches the database unvalidated.
import { validationError, type FieldError } from "../errors.js";

import type { NewItem } from "../db.js";

export const NAME_MAX = 200;
export const DESCRIPTION_MAX = 2000;
export const LIMIT_DEFAULT = 20;
export const LIMIT_MAX = 100;
/** PostgreSQL bigint: ids above it cannot exist, so they are refused before any query. */
export const BIGINT_MAX = 9_223_372_036_854_775_807n;

/**
 * Unicode White_Space: what names are trimmed of (as the Python service does).
 * Not String.prototype.trim, which keeps U+0085 and removes U+FEFF.
 */
export const WHITESPACE =
  "\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
const SPACE = new RegExp(`^[${WHITESPACE}]$`);

/** Linear, unlike a `\s+$`-style regex on a long run of spaces. */
export function trimWhitespace(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && SPACE.test(value.charAt(start))) start += 1;
  while (end > start && SPACE.test(value.charAt(end - 1))) end -= 1;
  return value.slice(start, end);
}

const ALLOWED_FIELDS = new Set(["name", "description"]);

export function parseNewItem(body: unknown): NewItem {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw validationError([{ field: "body", reason: "must be a JSON object" }]);
  }
  const fields: FieldError[] = [];
  const record = body as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    // An empty name is still named (`field` is never empty), as "body".
    if (key === "") fields.push({ field: "body", reason: "unknown field with an empty name" });
    else if (!ALLOWED_FIELDS.has(key)) fields.push({ field: key, reason: "unknown field" });
  }
  let name = "";
  const rawName = record["name"];
  if (rawName === undefined) {
    fields.push({ field: "name", reason: "is required" });
  } else if (typeof rawName !== "string") {
    fields.push({ field: "name", reason: "must be a string" });
  } else {
    name = trimWhitespace(rawName);
    const problem = textProblem(name, 1, NAME_MAX);
    if (problem !== null) fields.push({ field: "name", reason: problem });
  }
  let description: string | null = null;
  const rawDescription = record["description"];
  if (rawDescription !== undefined && rawDescription !== null) {
    if (typeof rawDescription !== "string") {
      fields.push({ field: "description", reason: "must be a string or null" });
    } else {
      description = rawDescription;
      const problem = textProblem(description, 0, DESCRIPTION_MAX);
      if (problem !== null) fields.push({ field: "description", reason: problem });
    }
  }
  if (fields.length > 0) throw validationError(fields);
  return { name, description };
}

/** Lengths count characters (code points), as PostgreSQL's varchar does. */
function textProblem(value: string, min: number, max: number): string | null {
  // PostgreSQL text cannot hold NUL, and a lone surrogate has no UTF-8 form.
  if (value.includes("\u0000")) return "must not contain NUL characters";
  if (!value.isWellFormed()) return "must be valid Unicode text";
  const length = codePoints(value);
  if (length < min) return min === 1 ? "must not be empty" : `must be at least ${min} characters`;
  if (length > max) return `must be at most ${max} characters (got ${length})`;
  return null;
}

function codePoints(value: string): number {
  // Well-formed here, so every surrogate is half of a pair: one character.
  return value.length - (value.match(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g)?.length ?? 0);
}

/** A path id: a positive integer that fits PostgreSQL's bigint. */
export function parseId(raw: string): bigint {
  const id = /^[1-9][0-9]{0,18}$/.test(raw) ? BigInt(raw) : 0n;
  if (id < 1n || id > BIGINT_MAX) {
    throw validationError([{ field: "id", reason: "must be a positive integer" }]);
  }
  return id;
}

export interface ListQuery {
  limit: number;
  /** Items with an id above this one; 0 for the first page. */
  after: bigint;
}

export function parseListQuery(query: Readonly<Record<string, unknown>>): ListQuery {
  const limitRaw = query["limit"];
  let limit = LIMIT_DEFAULT;
  if (limitRaw !== undefined) {
    const value = typeof limitRaw === "string" && /^[0-9]{1,3}$/.test(limitRaw) ? +limitRaw : 0;
    if (value < 1 || value > LIMIT_MAX) {
      throw validationError([
        { field: "limit", reason: `must be an integer from 1 to ${LIMIT_MAX}` },
      ]);
    }
    limit = value;
  }
  const cursorRaw = query["cursor"];
  let after = 0n;
  if (cursorRaw !== undefined) {
    const decoded = typeof cursorRaw === "string" ? decodeCursor(cursorRaw) : null;
    if (decoded === null) {
      throw validationError([
        { field: "cursor", reason: "must be the `next` value of an earlier page" },
      ]);
    }
    after = decoded;
  }
  return { limit, after };
}

// A cursor is the last id of a page, as URL-safe base64 of "i:<id>". Opaque to
// clients (the format may change), strict here: only what encodeCursor could
// have produced decodes.
const CURSOR_PREFIX = "i:";

export function encodeCursor(lastId: number | bigint): string {
  return Buffer.from(`${CURSOR_PREFIX}${lastId}`, "utf8").toString("base64url");
}

export function decodeCursor(raw: string): bigint | null {
  if (raw.length === 0 || raw.length > 200 || !/^[A-Za-z0-9_-]+$/.test(raw)) return null;
  const text = Buffer.from(raw, "base64url").toString("utf8");
  if (!text.startsWith(CURSOR_PREFIX)) return null;
  const digits = text.slice(CURSOR_PREFIX.length);
  if (!/^[1-9][0-9]{0,18}$/.test(digits)) return null;
  const id = BigInt(digits);
  if (id > BIGINT_MAX || encodeCursor(id) !== raw) return null;
  return id;
}
