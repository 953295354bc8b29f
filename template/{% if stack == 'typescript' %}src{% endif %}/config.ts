// Configuration from the environment only (docs: the service contract).
export interface Config {
  database: DatabaseTarget;
  port: number;
  host: string;
  logLevel: LogLevel;
  shutdownGraceSeconds: number;
  dbTimeoutMs: number;
}

// The parts of DATABASE_URL pg needs, already percent-decoded.
export interface DatabaseTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

/** Read and check every setting; the first problem is reported by name. */
export function loadConfig(env: Env = process.env): Config {
  const raw = env["DATABASE_URL"];
  if (raw === undefined || raw.trim() === "") {
    throw new ConfigError("DATABASE_URL is required (postgresql://user:pass@host:port/db)");
  }
  return {
    database: parseDatabaseUrl(raw),
    port: integer(env, "PORT", 8080, 0, 65535),
    host: nonEmpty(env["HOST"]) ?? "0.0.0.0",
    logLevel: logLevel(env["LOG_LEVEL"]),
    shutdownGraceSeconds: integer(env, "SHUTDOWN_GRACE_SECONDS", 10, 0, 300),
    dbTimeoutMs: integer(env, "DB_TIMEOUT_MS", 5000, 100, 60000),
  };
}

/**
 * Split a postgresql:// URL without ever quoting it: a mis-encoded password
 * lands in the host or port, so any echo of the value could leak it.
 */
export function parseDatabaseUrl(raw: string): DatabaseTarget {
  const refuse = (why: string): never => {
    throw new ConfigError(
      `DATABASE_URL is not a valid postgresql://user:pass@host:port/db URL (${why}); ` +
        "percent-encode special characters in the password ('@' as %40)",
    );
  };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return refuse("it does not parse as a URL");
  }
  if (url.protocol !== "postgresql:" && url.protocol !== "postgres:") {
    refuse("the scheme must be postgresql");
  }
  if (url.hostname === "") refuse("the host is missing");
  const database = decode(url.pathname.replace(/^\//, ""), refuse);
  if (database === "" || database.includes("/")) refuse("the database name is missing");
  const user = decode(url.username, refuse);
  if (user === "") refuse("the user is missing");
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port === "" ? 5432 : Number(url.port),
    user,
    password: decode(url.password, refuse),
    database,
  };
}

function nonEmpty(raw: string | undefined): string | undefined {
  const value = raw?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function decode(part: string, refuse: (why: string) => never): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return refuse("a percent-escape is invalid");
  }
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  if (!/^\d+$/.test(raw.trim())) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function logLevel(raw: string | undefined): LogLevel {
  const value = (nonEmpty(raw) ?? "info").toLowerCase();
  const level = LOG_LEVELS.find((known) => known === value);
  if (level === undefined) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}`);
  }
  return level;
}
