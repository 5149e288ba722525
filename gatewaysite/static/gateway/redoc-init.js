// Starts ReDoc on /redoc/ (a file, not inline script: the Content-Security-Policy forbids that).
// sanitize: descriptions, titles and examples come from admins and from source data, so ReDoc
// renders any HTML in them as inert text instead of running it.
(function () {
  "use strict";
  var systemFonts = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif";
  Redoc.init(
    JSON.parse(document.getElementById("schema-url").textContent),
    {
      sanitize: true,
      hideDownloadButton: false,
      theme: {
        typography: {
          fontFamily: systemFonts,
          headings: { fontFamily: systemFonts },
          code: { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" },
        },
      },
    },
    document.getElementById("redoc-container"),
  );
})();
