// The issued-key page's field and Copy button (a file, not inline script: the
// Content-Security-Policy forbids that, event-handler attributes included).
(function () {
  "use strict";
  var field = document.getElementById("gateway-raw-key");
  var button = document.getElementById("gateway-copy-key");
  if (!field || !button) { return; }
  field.addEventListener("click", function () { field.select(); });
  button.addEventListener("click", function () {
    field.select();
    var done = function () { document.getElementById("gateway-copied").textContent = "Copied."; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done);
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();
