// A real livedata server for the tests: `livedata serve --port 0` with its own cache folder and
// access file, ready once uvicorn says where it listens.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** The livedata command: LIVEDATA_BIN, else the repository's .venv (as `make` installs it). */
export const LIVEDATA = process.env.LIVEDATA_BIN ?? join(REPO, ".venv/bin/livedata");

/** Serves the bundled sample behind an access file with an API key per `keys` entry
 * (id -> `livedata keys new` options); resolves to `{url, keys, close}`. */
export async function serve({ keys = {}, env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "livedata-js-"));
  const access = join(dir, "access.toml");
  const made = {};
  for (const [id, grant] of Object.entries(keys)) {
    const { section, key } = newKey(id, grant);
    appendFileSync(access, section);
    made[id] = key;
  }
  const args = ["serve", "--port", "0", ...(Object.keys(keys).length ? ["--auth-file", access] : [])];
  const child = spawn(LIVEDATA, args, {
    env: { ...process.env, LIVEDATA_CACHE_DIR: join(dir, "cache"), ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  const url = await new Promise((resolveUrl, reject) => {
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const started = log.match(/Uvicorn running on (http:\/\/\S+)/);
      if (started) resolveUrl(started[1]);
    });
    child.on("exit", (code) => reject(new Error(`livedata serve exited with ${code}:\n${log}`)));
  });
  return {
    url,
    keys: made,
    async close() {
      child.kill("SIGTERM");
      await once(child, "exit");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `livedata keys new` writes the section to append on stdout and the key on stderr. */
function newKey(id, grant) {
  const run = spawnSync(LIVEDATA, ["keys", "new", id, ...grant], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`livedata keys new ${id}: ${run.stderr}`);
  return { section: run.stdout, key: run.stderr.trim().split("\n").at(-1) };
}
