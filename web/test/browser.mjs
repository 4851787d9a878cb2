// Headless Chromium for the browser tests: Debian's chromium (or
// $CHROMIUM_PATH), driven by playwright-core.
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

// skip is why the browser tests cannot run here, or false: without Chromium
// they are skipped, except in CI, where they must run.
export const skip = !existsSync(chromiumPath) && !process.env.CI
  ? `no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)` : false;

// launchChromium starts headless Chromium for a machine whose network is
// closed: no background traffic, no QUIC. playwright adds --headless and a
// fresh --user-data-dir itself.
export function launchChromium() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
