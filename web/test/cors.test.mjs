// Cross-origin browser access, from real headless Chromium: a page served
// by a second loopback server (another port, so another origin) calls a
// real sms binary over Connect, gRPC-web and REST. By default every call
// is refused (the preflight gets 403 and the browser blocks the call);
// with --cors-allow-origin naming the page's origin, the same calls
// succeed, the bearer token included.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { startSMS } from "./server.mjs";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const skip = !existsSync(chromiumPath) && !process.env.CI
  ? `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)` : false;

let browser, site, origin;

before(async () => {
  if (skip) return;
  // The other origin: one empty page.
  site = createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>other origin</title>");
  });
  await new Promise((done) => site.listen(0, "127.0.0.1", done));
  origin = `http://127.0.0.1:${site.address().port}`;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  site?.close();
});

// callsFrom runs, in a page of origin, one call per surface to sms (with
// token, if given) and returns for each either {ok, status, ...} or
// {blocked: message} when the browser refused it.
async function callsFrom(smsURL, token) {
  const page = await browser.newPage();
  try {
    await page.goto(origin + "/");
    return await page.evaluate(async ({ url, token }) => {
      const auth = token ? { Authorization: `Bearer ${token}` } : {};
      const attempt = async (fn) => { try { return await fn(); } catch (e) { return { blocked: String(e) }; } };
      return {
        connect: await attempt(async () => {
          const res = await fetch(`${url}/sms.NodeService/RegisterNode`, {
            method: "POST",
            headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1", ...auth },
            body: JSON.stringify({ node: { ipAddress: "10.0.0.9", port: 1 } }),
          });
          return { ok: res.ok, status: res.status, body: await res.json() };
        }),
        grpcweb: await attempt(async () => {
          // One empty GetClusterStatsRequest, framed.
          const res = await fetch(`${url}/sms.NodeService/GetClusterStats`, {
            method: "POST",
            headers: { "Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1", ...auth },
            body: new Uint8Array([0, 0, 0, 0, 0]),
          });
          // grpc-status: in the headers of an error, else in the trailer
          // frame at the end of the body.
          const text = new TextDecoder().decode(await res.arrayBuffer());
          const grpcStatus = res.headers.get("grpc-status") ?? text.match(/grpc-status:\s*(\d+)/)?.[1] ?? null;
          return { ok: res.ok, status: res.status, grpcStatus };
        }),
        rest: await attempt(async () => {
          const res = await fetch(`${url}/api/v1/nodes`, { headers: { Accept: "application/json", ...auth } });
          return { ok: res.ok, status: res.status };
        }),
      };
    }, { url: smsURL, token });
  } finally {
    await page.close();
  }
}

test("cross-origin calls are refused by default", { skip, timeout: 60000 }, async () => {
  const sms = await startSMS();
  try {
    const got = await callsFrom(sms.url);
    for (const [surface, r] of Object.entries(got)) {
      assert.ok(r.blocked, `${surface}: the browser let a cross-origin call through: ${JSON.stringify(r)}`);
    }
    // The preflight the browser sent was refused, with a reason.
    const res = await fetch(`${sms.url}/sms.NodeService/RegisterNode`, {
      method: "OPTIONS",
      headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" },
    });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /--cors-allow-origin/);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
  } finally {
    await sms.stop();
  }
});

test("--cors-allow-origin lets that origin call every surface", { skip, timeout: 60000 }, async () => {
  const tokenFile = join(mkdtempSync(join(tmpdir(), "sms-token-")), "token");
  writeFileSync(tokenFile, "s3cret\n", { mode: 0o600 });
  const sms = await startSMS(["--cors-allow-origin", origin, "--auth-token-file", tokenFile]);
  try {
    const got = await callsFrom(sms.url, "s3cret");
    assert.equal(got.connect.status, 200, JSON.stringify(got.connect));
    assert.match(got.connect.body.nodeUuid, /^[0-9a-f-]{36}$/);
    assert.equal(got.grpcweb.status, 200, JSON.stringify(got.grpcweb));
    assert.equal(got.grpcweb.grpcStatus, "0", JSON.stringify(got.grpcweb));
    assert.equal(got.rest.status, 200, JSON.stringify(got.rest));

    // Without the token the call gets through CORS and is refused by SMS,
    // and the page can read why.
    const anon = await callsFrom(sms.url);
    assert.equal(anon.connect.status, 401, JSON.stringify(anon.connect));
    assert.equal(anon.connect.body.code, "unauthenticated");
    assert.equal(anon.grpcweb.grpcStatus, "16", "grpc-status is exposed to the page: unauthenticated");

    // Another origin is still refused.
    const res = await fetch(`${sms.url}/sms.NodeService/RegisterNode`, {
      method: "OPTIONS",
      headers: { Origin: "http://evil.example", "Access-Control-Request-Method": "POST" },
    });
    assert.equal(res.status, 403);
  } finally {
    await sms.stop();
  }
});
