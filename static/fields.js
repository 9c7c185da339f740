// Inline fields in detail panels: Escape cancels an edit, leaving a changed field saves it.
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
    if (!form || form.dataset.cancelled || !form.isConnected || event.target.tagName === "TEXTAREA") return;
    form.requestSubmit();
  });
})();
