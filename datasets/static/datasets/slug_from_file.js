/* The dataset add form: choosing a file fills an empty slug with one made from the file name
 * ("seattle-weather.csv" -> "seattle_weather"), as the server would (datasets/admin.py
 * slug_proposal); a slug the admin typed is left alone. A slug the server would refuse is
 * replaced by a proposal before anything is sent, so the chosen file stays chosen (the admin's
 * forms are `novalidate`: the browser does not check the pattern by itself). */
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

  var note = document.createElement("p");
  note.className = "errornote";
  note.id = "slug-proposal";
  note.hidden = true;
  slug.parentNode.insertBefore(note, slug.nextSibling);

  // Capturing on the document runs before the form's own submit handlers (the upload).
  document.addEventListener("submit", function (event) {
    if (event.target !== slug.form || slug.validity.valid) { return; }
    var chosen = file.files && file.files[0];
    var typed = slug.value;
    var proposal = fromName(chosen ? chosen.name : typed) || fromName(typed);
    event.preventDefault();
    event.stopPropagation();
    if (proposal && new RegExp("^" + slug.getAttribute("pattern") + "$").test(proposal)) {
      slug.value = proposed = proposal;
      note.textContent = "\u201c" + typed + "\u201d cannot be a slug (" + slug.title.toLowerCase().replace(/\.$/, "") +
        "): proposed " + proposal + " instead. Press Save again to upload.";
    } else {
      note.textContent = slug.title;
    }
    note.hidden = false;
    slug.focus();
  }, true);

  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    if (!chosen || (slug.value && slug.value !== proposed)) { return; }
    proposed = fromName(chosen.name);
    slug.value = proposed;
  });
})();
