// Managed by Slipway (platform-owned): `copier update` keeps this file current.
// `make platform-check`: package.json and package-lock.json are yours; this
// names what this Slipway release's gates, configs and migration Job need from
// them: a package missing from the lock, or locked below the release's
// minimum, with the `npm install` that fixes it. It reads the lock only, so it
// works before `npm ci`. Runs with Node's type stripping.
//
// Arguments: the lock, then `group:name>=version` (group `main` or `dev`).
import { readFileSync } from "node:fs";

interface Lock {
  packages?: Record<string, { version?: string } | undefined>;
}

function parts(version: string): number[] {
  // 1.2.3-rc.1 compares as 1.2.3: the minimums are releases.
  return (version.split("-")[0] ?? "").split(".").map((part) => Number.parseInt(part, 10) || 0);
}

function atLeast(have: string, min: string): boolean {
  const [a, b] = [parts(have), parts(min)];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff > 0;
  }
  return true;
}

const [lockPath, ...requirements] = process.argv.slice(2);
if (lockPath === undefined) {
  console.error("usage: platform-check.ts package-lock.json 'group:name>=version' ...");
  process.exit(2);
}
const lock = JSON.parse(readFileSync(lockPath, "utf8")) as Lock;
const problems: string[] = [];
for (const requirement of requirements) {
  const [group, spec] = requirement.split(/:(.*)/s) as [string, string];
  const [name, min] = spec.split(">=") as [string, string];
  const install = `npm install${group === "dev" ? " -D" : ""} ${name}@^${min}`;
  const have = lock.packages?.[`node_modules/${name}`]?.version;
  if (have === undefined) {
    problems.push(`${lockPath} lacks ${name}, which this Slipway release needs; run: ${install}`);
  } else if (!atLeast(have, min)) {
    problems.push(
      `${lockPath} locks ${name} ${have}; this Slipway release needs ${min} or newer; run: ${install}`,
    );
  }
}
for (const problem of problems) console.error(`platform-check: ${problem}`);
if (problems.length > 0) process.exit(1);
console.log(`platform-check: ${lockPath} has every package this Slipway release needs`);
