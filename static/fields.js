// Inline fields in detail panels: Escape cancels an edit, leaving a changed field saves it
// (unless focus went to the field's own Save or Cancel button, which then decides).
(function () {
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var form = event.target.closest && event.target.closest(".ifield-form");
    if (!form) return;
    event.preventDefault();
    form.dataset.cancelled = "1";
    var cancel = form.querySelector(".ifield-cancel");
    if (cancel) cancel.click();
  });
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest(".ifield-form");
    if (!form || event.target.tagName === "TEXTAREA") return;
    setTimeout(function () {
      if (form.dataset.cancelled || !form.isConnected) return;
      if (form.contains(document.activeElement) && document.activeElement !== event.target) return;
      form.requestSubmit();
    }, 0);
  });
})();
