/* Upload progress of the dataset add and replace forms (templates/admin/datasets/dataset/upload_progress.html).
 *
 * The form is sent with XMLHttpRequest so that the page can show how much of the file has been
 * sent. The server answers with a redirect to the import's progress page (the import runs in the
 * background), which is then opened, or with the form again and its errors, which is shown.
 * Without JavaScript the form posts normally. */
(function () {
  "use strict";
  var box = document.getElementById("upload-progress");
  if (!box || !window.XMLHttpRequest || !window.FormData) { return; }
  var form = document.getElementById(box.getAttribute("data-form"));
  if (!form) { return; }
  var limitMb = box.getAttribute("data-limit-mb");
  var bar = box.querySelector("progress");
  var text = box.querySelector(".upload-progress-text");

  function show(percent, message) {
    box.hidden = false;
    if (percent === null) { bar.removeAttribute("value"); } else { bar.value = percent; }
    text.textContent = message;
  }

  form.addEventListener("submit", function (event) {
    var input = form.querySelector("input[type=file]");
    var file = input && input.files && input.files[0];
    if (!file) { return; }  // nothing to upload: the normal post is fine
    var limit = parseInt(input.getAttribute("data-max-bytes") || "0", 10);
    event.preventDefault();
    if (limit && file.size > limit) {
      show(0, "The file is " + (file.size / 1048576).toFixed(1) + " MB: the upload limit is " + limitMb + " MB.");
      return;
    }
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) {
      data.append(event.submitter.name, event.submitter.value || "");
    }
    var buttons = form.querySelectorAll("input[type=submit], button[type=submit]");
    buttons.forEach(function (button) { button.disabled = true; });
    var target = form.getAttribute("action") || window.location.href;
    var request = new XMLHttpRequest();
    request.open("POST", target);
    request.upload.onprogress = function (progress) {
      if (progress.lengthComputable) {
        var percent = Math.round(progress.loaded * 100 / progress.total);
        show(percent, "Uploading " + file.name + ": " + percent + "%");
      }
    };
    request.upload.onload = function () { show(null, "Uploaded " + file.name + "."); };
    request.onload = function () {
      var answered = request.responseURL || target;
      if (answered !== new URL(target, window.location.href).href) {
        // Redirected: the upload was accepted and its import started. Open the import's page.
        window.location.assign(answered);
        return;
      }
      // The form again, with its errors.
      document.open();
      document.write(request.responseText);
      document.close();
    };
    request.onerror = function () {
      buttons.forEach(function (button) { button.disabled = false; });
      show(0, "The upload failed (connection lost). Try again.");
    };
    show(0, "Uploading " + file.name + ": 0%");
    request.send(data);
  });
})();
