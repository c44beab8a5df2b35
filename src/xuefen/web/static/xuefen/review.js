// The review queue's batch form: "select this page" ticks every row, the
// counter follows the ticks, and ticking a row picks "selected records".
(function () {
  "use strict";
  function init() {
    var all = document.getElementById("select-page");
    var counter = document.getElementById("selected-count");
    var picks = Array.prototype.slice.call(document.querySelectorAll("input.pick"));
    if (!all || !counter) { return; }
    var scope = document.querySelector("input[name=scope][value=selected]");
    function count() {
      counter.textContent = String(picks.filter(function (p) { return p.checked; }).length);
    }
    all.addEventListener("change", function () {
      picks.forEach(function (p) { p.checked = all.checked; });
      if (scope) { scope.checked = true; }
      count();
    });
    picks.forEach(function (p) {
      p.addEventListener("change", function () { if (scope) { scope.checked = true; } count(); });
    });
    count();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
