// Drag and drop on the board: SortableJS moves the card, htmx posts the move, the server answers.
(function () {
  function initColumns(root) {
    root.querySelectorAll("ol.cards[data-stage]").forEach(function (list) {
      if (list._sortable) return;
      list._sortable = Sortable.create(list, {
        group: "board",
        draggable: ".card",
        filter: "details, summary, button, a, input, select",
        preventOnFilter: false,
        animation: 120,
        delayOnTouchOnly: true,
        delay: 150,
        onEnd: function (evt) {
          if (evt.from === evt.to) return;
          var card = evt.item;
          htmx.ajax("POST", "/board/move", {
            target: "#board-dialog",
            swap: "innerHTML",
            values: {
              record: card.dataset.record,
              version: card.dataset.version,
              to: evt.to.dataset.stage
            }
          });
        }
      });
    });
  }
  htmx.onLoad(function (elt) {
    if (typeof Sortable === "undefined") return;
    initColumns(elt.closest ? (elt.closest(".board") || elt) : document);
  });
})();
