/* Progress of a background import (templates/admin/datasets/dataset/import_progress.html).
 *
 * Polls the import's status (JSON) every second and moves the bar; once the import has ended,
 * opens data-reload-url (the import's page, which then shows the dataset or why it failed). */
(function () {
  "use strict";
  var boxes = document.querySelectorAll(".gateway-import[data-status-url]");
  boxes.forEach(function (box) {
    var bar = box.querySelector("progress");
    var text = box.querySelector(".gateway-import-text");
    var statusUrl = box.getAttribute("data-status-url");
    var reloadUrl = box.getAttribute("data-reload-url") || window.location.href;
    var failures = 0;

    function poll() {
      fetch(statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("status " + response.status); }
          return response.json();
        })
        .then(function (status) {
          failures = 0;
          bar.value = status.progress;
          bar.textContent = status.progress + "%";
          text.textContent = status.state.charAt(0).toUpperCase() + status.state.slice(1) + ": " + status.progress + "%";
          if (!status.active) {
            window.location.assign(reloadUrl);
            return;
          }
          window.setTimeout(poll, 1000);
        })
        .catch(function () {
          failures += 1;
          text.textContent = "Waiting for the server…";
          window.setTimeout(poll, Math.min(10000, 1000 * failures));
        });
    }
    window.setTimeout(poll, 1000);
  });
})();
