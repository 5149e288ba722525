// Loaded before ReDoc: its sidebar shows Redocly's logo from Redocly's CDN (the bundle names that
// address and has no option to leave the logo out), which the page must not reach. An image given
// that address gets an empty one instead: it fails at once, without a request, and ReDoc then
// leaves the logo out of its "API docs by Redocly" link.
(function () {
  "use strict";
  var REMOTE = "https://cdn.redoc.ly/";
  var EMPTY = "data:,";
  var local = function (value) {
    return String(value).indexOf(REMOTE) === 0 ? EMPTY : value;
  };
  var image = HTMLImageElement.prototype;
  var src = Object.getOwnPropertyDescriptor(image, "src");
  Object.defineProperty(image, "src", {
    configurable: true,
    enumerable: src.enumerable,
    get: src.get,
    set: function (value) { src.set.call(this, local(value)); },
  });
  var setAttribute = Element.prototype.setAttribute;
  image.setAttribute = function (name, value) {
    return setAttribute.call(this, name, String(name).toLowerCase() === "src" ? local(value) : value);
  };
})();
