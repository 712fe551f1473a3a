// Copy the front-end libraries from node_modules into the package's static files,
// so the appliance serves them itself and never needs a CDN. Each entry names the
// file to ship and its licence.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(root, "clipsync", "static", "vendor");

const assets = [
  { from: "hls.js/dist/hls.min.js", to: "hls.min.js" },
  { from: "hls.js/LICENSE", to: "hls.js.LICENSE.txt" },
  { from: "chart.js/dist/chart.umd.min.js", to: "chart.umd.min.js" },
  { from: "chart.js/LICENSE.md", to: "chart.js.LICENSE.md" },
  { from: "tus-js-client/dist/tus.min.js", to: "tus.min.js" },
  { from: "tus-js-client/LICENSE", to: "tus-js-client.LICENSE.txt" },
  // The API reference page (/api/docs): Swagger UI's bundle and stylesheet only.
  { from: "swagger-ui-dist/swagger-ui-bundle.js", to: "swagger-ui-bundle.js" },
  { from: "swagger-ui-dist/swagger-ui.css", to: "swagger-ui.css" },
  { from: "swagger-ui-dist/LICENSE", to: "swagger-ui.LICENSE.txt" },
  { from: "swagger-ui-dist/NOTICE", to: "swagger-ui.NOTICE.txt" },
  // The licences of the libraries inside the bundle.
  { from: "swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt", to: "swagger-ui-bundle.js.LICENSE.txt" },
];

mkdirSync(vendor, { recursive: true });
for (const { from, to } of assets) {
  copyFileSync(join(root, "node_modules", from), join(vendor, to));
}
writeFileSync(join(vendor, ".built"), assets.map((a) => a.to).join("\n") + "\n");
console.log(`bundled ${assets.length} files into clipsync/static/vendor`);
