// One JSON object per line on stdout with `ts`, `level` and `msg` (the contract's log shape).
import { pino, type Logger } from "pino";

import type { LogLevel } from "./config.js";

export function createLogger(
  level: LogLevel,
  destination: pino.DestinationStream = pino.destination({ dest: 1, sync: true }),
): Logger {
  return pino(
    {
      level,
      messageKey: "msg",
      base: null,
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
