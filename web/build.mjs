// Builds the dashboard into ../service/web/dist (committed, embedded in the
// sms binary): app.js bundled and minified by esbuild, index.html and app.css
// copied; and Swagger UI into ../service/apidocs/swagger. The output depends only on src/ and the locked packages, so
// `npm ci && npm run build` reproduces the committed files byte for byte.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "service", "web", "dist");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["src/app.ts"],
  outfile: join(out, "app.js"),
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  legalComments: "none",
  logLevel: "warning",
});
for (const f of ["index.html", "app.css"]) copyFileSync(join(here, "src", f), join(out, f));

// Swagger UI for /swagger-ui/ (../service/apidocs/swagger, embedded too): the
// prebuilt bundle and stylesheet of the pinned swagger-ui-dist package, with
// its licence, and our page and initializer.
const swaggerOut = join(here, "..", "service", "apidocs", "swagger");
const swaggerDist = join(here, "node_modules", "swagger-ui-dist");
rmSync(swaggerOut, { recursive: true, force: true });
mkdirSync(swaggerOut, { recursive: true });
for (const f of ["swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"]) copyFileSync(join(swaggerDist, f), join(swaggerOut, f));
for (const f of ["index.html", "init.js"]) copyFileSync(join(here, "src", "swagger", f), join(swaggerOut, f));
