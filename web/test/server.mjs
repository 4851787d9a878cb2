// Starts a real sms binary (memory backend, free port) for the Node tests
// and talks to it with plain fetch (Connect protocol, JSON).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

// smsBinary returns $SMS_BIN, or builds cmd/sms into a temporary directory.
export function smsBinary() {
  if (process.env.SMS_BIN) return process.env.SMS_BIN;
  const bin = join(mkdtempSync(join(tmpdir(), "sms-web-test-")), "sms");
  execFileSync("go", ["build", "-o", bin, "./cmd/sms"], { cwd: repo, stdio: "inherit" });
  return bin;
}

// startSMS runs the binary (bin, or smsBinary()) on 127.0.0.1:0 and
// resolves to { url, stop } once its "sms listening" log line names the
// address.
export function startSMS(args = [], bin = smsBinary()) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("SMS_") && !k.startsWith("KV_")));
  const child = spawn(bin, ["--addr", "127.0.0.1:0", "--kv-backend", "memory", "--log-format", "json", ...args],
    { env, stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sms did not start in 20s:\n${logs}`)), 20000);
    const onData = (chunk) => {
      logs += chunk;
      for (const line of logs.split("\n")) {
        if (!line.includes('"sms listening"')) continue;
        clearTimeout(timer);
        const url = `http://${JSON.parse(line).addr}`;
        const stop = () => new Promise((done) => {
          if (child.exitCode !== null) return done();
          child.once("exit", done);
          child.kill("SIGTERM");
        });
        resolve({ url, stop, logs: () => logs });
        return;
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`sms exited (${code}):\n${logs}`)); });
  });
}

// rpc calls one unary sms.NodeService method with the Connect protocol's
// JSON encoding and returns the decoded answer; it throws on an error.
export async function rpc(url, method, body) {
  const res = await fetch(`${url}/sms.NodeService/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status}: ${JSON.stringify(json)}`);
  return json;
}
