/* The dataset add form: choosing a file fills an empty slug with one made from the file name
 * ("seattle-weather.csv" -> "seattle_weather"), as the server would (datasets/admin.py
 * slug_proposal). A slug the admin typed is left alone. */
(function () {
  "use strict";
  var slug = document.querySelector("input[data-slug-from]");
  if (!slug) { return; }
  var file = document.getElementById(slug.getAttribute("data-slug-from"));
  if (!file) { return; }
  var proposed = "";

  function fromName(name) {
    var stem = name.replace(/^.*[\\/]/, "").split(".")[0];
    var text = stem.replace(/ß/g, "ss").normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
    text = text.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[^0-9a-zA-Z]+/g, "_");
    text = text.replace(/^_+|_+$/g, "").toLowerCase().replace(/_{2,}/g, "_");
    if (!text) { return ""; }
    if (/^[0-9]/.test(text)) { text = "c_" + text; }
    return text.slice(0, 40).replace(/_+$/, "");
  }

  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    if (!chosen || (slug.value && slug.value !== proposed)) { return; }
    proposed = fromName(chosen.name);
    slug.value = proposed;
  });
})();
