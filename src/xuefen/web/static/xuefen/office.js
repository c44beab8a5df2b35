// 录入校本研修学分: "填入" copies the common hours into every empty row.
(function () {
  "use strict";
  function init() {
    var button = document.getElementById("fill-button");
    var source = document.getElementById("fill-hours");
    if (!button || !source) { return; }
    button.addEventListener("click", function () {
      document.querySelectorAll("input.hours").forEach(function (input) {
        if (!input.value) { input.value = source.value; }
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
