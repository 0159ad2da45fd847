// Live updates for console pages (own code, no library): one EventSource per page, to the
// URL in the first [data-live] element. Each "activity" event makes every element with
// hx-trigger="live" fetch itself again through htmx. EventSource reconnects by itself.
(function () {
  "use strict";
  var marked = document.querySelector("[data-live]");
  if (!marked || !window.EventSource || !window.htmx) { return; }
  var source = new EventSource(marked.getAttribute("data-live"));
  source.addEventListener("activity", function () {
    document.querySelectorAll('[hx-trigger="live"]').forEach(function (node) {
      window.htmx.trigger(node, "live");
    });
  });
  window.addEventListener("pagehide", function () { source.close(); });
}());
