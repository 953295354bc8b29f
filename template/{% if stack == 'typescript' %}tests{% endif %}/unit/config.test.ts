import { describe, expect, it } from "vitest";

import { ConfigError, loadConfig } from "../../src/config.js";

const URL_OK = "postgresql://app:s%40cret@db.internal:5433/orders";

describe("loadConfig", () => {
  it("applies the contract's defaults", () => {
    const config = loadConfig({ DATABASE_URL: URL_OK });
    expect(config).toMatchObject({
      port: 8080,
      host: "0.0.0.0",
      logLevel: "info",
      shutdownGraceSeconds: 10,
      dbTimeoutMs: 5000,
    });
  });

  it("percent-decodes the URL's parts", () => {
    expect(loadConfig({ DATABASE_URL: URL_OK }).database).toEqual({
      host: "db.internal",
      port: 5433,
      user: "app",
      password: "s@cret",
      database: "orders",
    });
  });

  it("requires DATABASE_URL", () => {
    expect(() => loadConfig({})).toThrow(/DATABASE_URL is required/);
  });

  it.each([
    ["a slash in the password", "postgresql://app:Zq9/Kx@host/db"],
    ["password characters in the port", "postgresql://app:Zq9:Kx/Wv@host/db"],
    ["another scheme", "mysql://app:Zq9Kx@host/db"],
    ["no database", "postgresql://app:Zq9Kx@host/"],
    ["garbage", "not a url Zq9Kx"],
  ])("refuses %s without quoting any of it", (_why, value) => {
    let message = "";
    try {
      loadConfig({ DATABASE_URL: value });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/DATABASE_URL/);
    for (const secret of ["Zq9", "Kx", "Wv"]) {
      expect(message).not.toContain(secret);
    }
  });

  it("reads an unencoded @ in the password as part of it (the last @ ends the user info)", () => {
    expect(loadConfig({ DATABASE_URL: "postgresql://app:p@ss@host/db" }).database.password).toBe(
      "p@ss",
    );
  });

  it.each([
    ["DB_TIMEOUT_MS", "99"],
    ["DB_TIMEOUT_MS", "60001"],
    ["DB_TIMEOUT_MS", "1.5"],
    ["PORT", "http"],
    ["PORT", "70000"],
    ["SHUTDOWN_GRACE_SECONDS", "-1"],
    ["LOG_LEVEL", "loud"],
  ])("refuses %s=%s naming the variable", (name, value) => {
    expect(() => loadConfig({ DATABASE_URL: URL_OK, [name]: value })).toThrow(new RegExp(name));
  });

  it("accepts DB_TIMEOUT_MS at both ends of its range", () => {
    expect(loadConfig({ DATABASE_URL: URL_OK, DB_TIMEOUT_MS: "100" }).dbTimeoutMs).toBe(100);
    expect(loadConfig({ DATABASE_URL: URL_OK, DB_TIMEOUT_MS: "60000" }).dbTimeoutMs).toBe(60000);
  });
});
