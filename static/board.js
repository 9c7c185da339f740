// Drag and drop on the board: SortableJS moves the card, htmx posts the move, the server answers
// with the card where it really is. If the request fails, the card goes back and a toast says so.
(function () {
  var pending = null;

  function putBack() {
    if (!pending) return;
    var list = pending.from, item = pending.item, before = list.children[pending.oldIndex] || null;
    list.insertBefore(item, before);
    pending = null;
    var toasts = document.getElementById("toasts");
    if (toasts) {
      var toast = document.createElement("div");
      toast.className = "toast toast-error";
      toast.setAttribute("role", "alert");
      toast.textContent = "The move did not reach the server; the card is back where it was. Try again.";
      toasts.appendChild(toast);
    }
  }

  function initColumns(root) {
    root.querySelectorAll("ol.cards[data-stage]").forEach(function (list) {
      if (list._sortable) return;
      list._sortable = Sortable.create(list, {
        group: "board",
        draggable: ".card:not(.read-only)",
        filter: "details, summary, button, a, input, select",
        preventOnFilter: false,
        animation: 120,
        delayOnTouchOnly: true,
        delay: 150,
        onEnd: function (evt) {
          if (evt.from === evt.to) return;
          var card = evt.item;
          pending = {from: evt.from, item: card, oldIndex: evt.oldIndex};
          htmx.ajax("POST", "/board/move", {
            target: "#board-dialog",
            swap: "innerHTML",
            values: {record: card.dataset.record, version: card.dataset.version, to: evt.to.dataset.stage}
          });
        }
      });
    });
  }

  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!pending || evt.detail.requestConfig.path !== "/board/move") return;
    var status = evt.detail.xhr ? evt.detail.xhr.status : 0;
    if (evt.detail.failed && [409, 422].indexOf(status) === -1) putBack();
    pending = null;
  });

  htmx.onLoad(function (elt) {
    if (typeof Sortable === "undefined") return;
    initColumns(elt.closest ? (elt.closest(".board") || elt) : document);
  });
})();
