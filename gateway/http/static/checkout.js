// Live status for the checkout page. The page is complete without it (it then refreshes
// itself); with it, status changes arrive as server-sent events from the same origin.
(function () {
  "use strict";
  var box = document.getElementById("status-box");
  if (!box || !box.dataset.events || !window.EventSource) { return; }
  var source = new EventSource(box.dataset.events);
  source.addEventListener("status", function (event) {
    var doc = JSON.parse(event.data);
    document.getElementById("status").textContent = doc.status;
    document.getElementById("status-text").textContent = doc.status_text;
    document.getElementById("confirmations").textContent = doc.confirmations_text;
    box.className = "status status-" + doc.status;
    if (doc.final) { source.close(); }
  });
  // Refused (too many open streams) or gone for good: fall back to reloading the page.
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      window.setTimeout(function () { window.location.reload(); }, 15000);
    }
  });
})();
