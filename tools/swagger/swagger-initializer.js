// Swagger UI's start, copied into the docs root by tools/swag_config.py: the services are
// listed in docs/openapi/swagger-ui/swagger-config.json (NGINX: /docs/openapi/), the file
// Compose's swagger-ui loads by the same relative URL (docker-compose.yml's CONFIG_URL)
window.onload = function () {
  window.ui = SwaggerUIBundle({
    configUrl: "./openapi/swagger-ui/swagger-config.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
