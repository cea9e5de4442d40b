// Dragging a card to another place in its path (SortableJS, vendor/sortablejs). Each path on the canvas (the main
// line, each arm of a branch) is a list whose items are the step cards; branching cards, ends and jumps stay put.
// On drop the card's new place is named by the connector just above it (its "+" carries the insertion key in
// data-insert) and posted to /nodes/<id>/move through #move-form, which adds the draft revision: the answer redraws
// the canvas out of band. A refused move (422, or 409 on a stale draft) puts the card back where it was and the
// message shows. Move up / Move down in the step panel (_move_control.html) are the keyboard's way to do the same.
(function () {
  "use strict";
  const PATHS = "#canvas .fc, #canvas .fc-arm";
  let origin = null;  // the dragged card's step, where it came from and the key above it there
  let pending = null;  // the move being saved, to put back if it is refused
  let swallowClick = false;  // the mouse button let go at the end of a drag is not a click on the card

  function form() { return document.getElementById("move-form"); }

  function keyOf(connector) {
    const add = connector && connector.querySelector(":scope > .fc-add[data-insert]");
    return add ? add.getAttribute("data-insert") : null;
  }

  // The insertion key of the connector above a step's place: a step's own connector, the path's first connector,
  // or where the arms of a branch above meet again. Ends, jumps and tails are passed over.
  function keyAbove(step) {
    for (let el = step.previousElementSibling; el; el = el.previousElementSibling) {
      if (el.matches(".fc-connector")) { return keyOf(el); }
      if (el.matches(".fc-step, .fc-branch")) { return keyOf(el.querySelector(":scope > .fc-connector")); }
    }
    return null;
  }

  function all(disabled) {
    document.querySelectorAll(PATHS).forEach(function (el) {
      const sortable = window.Sortable && Sortable.get(el);
      if (sortable) { sortable.option("disabled", disabled); }
    });
  }

  function say(html) {
    const status = document.getElementById("builder-move-status");
    if (status) { status.innerHTML = html; }
  }

  function putBack(move) {
    if (move.parent.isConnected) { move.parent.insertBefore(move.step, move.next && move.next.isConnected ? move.next : null); }
  }

  function shownInPanel() {  // the step the panel shows, if it has Move up / Move down to redraw
    const head = document.querySelector("#builder-panel:not([hidden]) .node-panel-head[data-node-id]");
    return head && document.getElementById("move-control") ? head.getAttribute("data-node-id") : null;
  }

  function onStart(event) {
    origin = { step: event.item, parent: event.from, next: event.item.nextElementSibling, key: keyAbove(event.item) };
    say("");
  }

  function onEnd(event) {
    const move = origin;
    origin = null;
    swallowClick = true;
    setTimeout(function () { swallowClick = false; }, 50);
    const card = event.item.querySelector(".fc-card[data-node-id]");
    const to = keyAbove(event.item);
    if (!move || !card || (to === move.key && event.to === move.parent)) { return; }  // dropped where it was
    if (!to) {
      putBack(move);
      say('<p class="alert alert-error" role="alert">A step cannot go there: drop it just below a step or a branch’s label.</p>');
      return;
    }
    const values = { to: to };
    const panelNode = shownInPanel();
    if (panelNode) { values.panel_node = panelNode; }
    pending = move;
    all(true);
    const url = form().getAttribute("data-move-url").replace("__node__", encodeURIComponent(card.getAttribute("data-node-id")));
    htmx.ajax("POST", url, { source: form(), values: values });
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt !== form() || !pending) { return; }
    const move = pending;
    pending = null;
    if (event.detail.successful) {
      say("");
    } else {
      putBack(move);  // the canvas stays as it was; the answer's message is in #builder-move-status (or the panel)
      if (!event.detail.xhr || !event.detail.xhr.status) {
        say('<p class="alert alert-error" role="alert">The move was not saved: Atlas could not be reached.</p>');
      }
    }
    all(false);
  });

  document.addEventListener("click", function (event) {
    if (swallowClick && event.target.closest(".fc-card")) {
      event.preventDefault();
      event.stopImmediatePropagation();
      swallowClick = false;
    }
  }, true);

  function init(root) {
    if (!window.Sortable || !form() || !root.querySelectorAll) { return; }
    const paths = Array.prototype.slice.call(root.querySelectorAll(PATHS));
    if (root.matches(PATHS)) { paths.push(root); }
    paths.forEach(function (el) {
      if (Sortable.get(el)) { return; }
      Sortable.create(el, {
        group: "builder-steps", draggable: ">.fc-step[data-movable]", handle: ".fc-card", filter: ".fc-add",
        preventOnFilter: false, forceFallback: true, fallbackOnBody: true, fallbackTolerance: 4,
        delay: 150, delayOnTouchOnly: true, swapThreshold: 0.65, animation: 150,
        ghostClass: "fc-step-ghost", chosenClass: "fc-step-chosen", dragClass: "fc-step-drag",
        onStart: onStart, onEnd: onEnd,
      });
    });
  }

  htmx.onLoad(init);
})();
