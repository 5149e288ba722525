// Starts Swagger UI on /swagger/ (a file, not inline script: the Content-Security-Policy forbids
// that). A key entered under "Authorize" lives only as long as the page: persistAuthorization
// would keep it in localStorage, where any script on this origin could read it.
(function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: JSON.parse(document.getElementById("schema-url").textContent),
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    persistAuthorization: false,
    displayOperationId: true,
    // The default validator badge is fetched from another host: the page must work offline.
    validatorUrl: null,
  });
})();
