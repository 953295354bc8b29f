import { describe, expect, it } from "vitest";

import { HttpError } from "../../src/errors.js";
import {
  BIGINT_MAX,
  decodeCursor,
  encodeCursor,
  parseId,
  parseListQuery,
  parseNewItem,
} from "../../src/items/input.js";

function fieldsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(HttpError);
    return ((error as HttpError).fields ?? []).map((f) => f.field);
  }
  throw new Error("expected a validation error");
}

describe("parseNewItem", () => {
  it("trims the name and keeps the description", () => {
    expect(parseNewItem({ name: "  Widget \t", description: " as is " })).toEqual({
      name: "Widget",
      description: " as is ",
    });
    expect(parseNewItem({ name: "x" })).toEqual({ name: "x", description: null });
  });

  it("trims Unicode White_Space, not what String.prototype.trim does", () => {
    // U+0085 is White_Space (trim keeps it); U+FEFF is not (trim removes it).
    expect(parseNewItem({ name: "\u0085\u2005x\u3000" }).name).toBe("x");
    expect(parseNewItem({ name: "\ufeffx" }).name).toBe("\ufeffx");
    expect(fieldsOf(() => parseNewItem({ name: "\u0085\u2028" }))).toEqual(["name"]);
  });

  it("names every unknown field, an empty name as the body", () => {
    expect(fieldsOf(() => parseNewItem({ name: "x", sku: 1, "": null }))).toEqual(["sku", "body"]);
  });

  it("counts characters, not UTF-16 units", () => {
    expect(parseNewItem({ name: "🚀".repeat(200) }).name).toHaveLength(400);
    expect(fieldsOf(() => parseNewItem({ name: "🚀".repeat(201) }))).toEqual(["name"]);
  });

  it.each([
    [[], "body"],
    [null, "body"],
    ["Widget", "body"],
    [{}, "name"],
    [{ name: "   " }, "name"],
    [{ name: JSON.parse("1e400") as number }, "name"],
    [{ name: "a\u0000b" }, "name"],
    [{ name: "\ud800" }, "name"],
    [{ name: "ok", description: 5 }, "description"],
    [{ name: "ok", description: "d".repeat(2001) }, "description"],
    [{ name: "ok", id: 7 }, "id"],
  ])("refuses %j naming %s", (body, field) => {
    expect(fieldsOf(() => parseNewItem(body))).toContain(field);
  });
});

describe("parseId", () => {
  it("accepts positive integers up to bigint", () => {
    expect(parseId("1")).toBe(1n);
    expect(parseId(BIGINT_MAX.toString())).toBe(BIGINT_MAX);
  });

  it.each([
    "0",
    "-1",
    "01",
    "1.5",
    "1e3",
    "abc",
    " 1",
    "9223372036854775808",
    "99999999999999999999",
  ])("refuses %j", (raw) => {
    expect(fieldsOf(() => parseId(raw))).toEqual(["id"]);
  });
});

describe("parseListQuery", () => {
  it("defaults to the first page of 20", () => {
    expect(parseListQuery({})).toEqual({ limit: 20, after: 0n });
  });

  it.each(["0", "101", "-1", "1.5", "", "abc", "NaN"])("refuses limit=%j", (limit) => {
    expect(fieldsOf(() => parseListQuery({ limit }))).toEqual(["limit"]);
  });

  it("refuses a repeated limit", () => {
    expect(fieldsOf(() => parseListQuery({ limit: ["1", "2"] }))).toEqual(["limit"]);
  });

  it("ignores other parameters", () => {
    expect(parseListQuery({ offset: "5", total: "x" })).toEqual({ limit: 20, after: 0n });
  });
});

describe("cursors", () => {
  it("round-trip and stay URL-safe and short", () => {
    for (const id of [1n, 42n, BIGINT_MAX]) {
      const cursor = encodeCursor(id);
      expect(cursor).toMatch(/^[A-Za-z0-9_-]{1,200}$/);
      expect(decodeCursor(cursor)).toBe(id);
      expect(parseListQuery({ cursor })).toEqual({ limit: 20, after: id });
    }
  });

  it.each([
    "",
    "x",
    "!!!",
    Buffer.from("i:0").toString("base64url"),
    Buffer.from("i:01").toString("base64url"),
    Buffer.from("i:-5").toString("base64url"),
    Buffer.from("o:5").toString("base64url"),
    Buffer.from("i:9223372036854775808").toString("base64url"),
    `${encodeCursor(5n)}=`,
    "A".repeat(201),
  ])("refuses a cursor the service could not have issued: %j", (cursor) => {
    expect(decodeCursor(cursor)).toBeNull();
    expect(fieldsOf(() => parseListQuery({ cursor }))).toEqual(["cursor"]);
  });
});
