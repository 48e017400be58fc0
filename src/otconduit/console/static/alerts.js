// Alerts page: "select all" for the bulk acknowledge form (the form works without it).
"use strict";
(function () {
  const all = document.getElementById("select-all");
  if (!all) return;
  const boxes = () => Array.from(document.querySelectorAll("input[name=ids][form=bulk]"));
  all.addEventListener("change", () => { for (const b of boxes()) b.checked = all.checked; });
})();
