// The API reference page (/api/docs): Swagger UI, bundled into static/vendor, reading
// /api/openapi.json. A file of its own because the Content-Security-Policy allows
// no inline script.
(() => {
  "use strict";

  const target = document.getElementById("swagger-ui");
  if (!target) return;
  if (typeof window.SwaggerUIBundle !== "function") {
    target.textContent = "The API reference could not be loaded. The document itself is at /api/openapi.json.";
    return;
  }
  const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

  window.SwaggerUIBundle({
    url: target.dataset.spec || "/api/openapi.json",
    domNode: target,
    deepLinking: true,
    docExpansion: "none",
    // Never send the document to swagger.io's online validator: the appliance
    // works offline, and the document is checked by the test suite instead.
    validatorUrl: null,
    // "Try it out" runs in this browser, with its session cookie: unsafe methods
    // then need the CSRF header, as every script of the site sends it.
    requestInterceptor: (request) => {
      if (!SAFE.has(String(request.method || "GET").toUpperCase()) && window.ClipSync) {
        request.headers["X-CSRF-Token"] = window.ClipSync.csrfToken();
      }
      return request;
    },
  });
})();
