// Swagger UI's start, copied into the docs root by tools/swag_config.py: the services are
// listed in swagger-config.json, written beside it
window.onload = function () {
  window.ui = SwaggerUIBundle({
    configUrl: "./swagger-config.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
