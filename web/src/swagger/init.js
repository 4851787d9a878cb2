// Swagger UI over the server's own OpenAPI document. validatorUrl: null
// keeps the page from calling the public validator: it loads nothing but
// its own files and /api/openapi.json.
window.ui = SwaggerUIBundle({
  url: "../api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
