// The builder's keyboard island: a card opens its step in the side panel (htmx), Escape or the close button shuts
// the panel and focus goes back to the card; a problem's link moves focus to the card it names.
(function () {
  "use strict";
  let opener = null;

  function panel() { return document.getElementById("builder-panel"); }

  function card(nodeId) { return document.querySelector('.fc-card[data-node-id="' + CSS.escape(nodeId) + '"]'); }

  function markOpen(nodeId) {
    document.querySelectorAll(".fc-card[aria-expanded]").forEach(function (c) { c.removeAttribute("aria-expanded"); });
    const open = nodeId && card(nodeId);
    if (open) { open.setAttribute("aria-expanded", "true"); }
  }

  function close() {
    const p = panel();
    if (!p || p.hidden) { return; }
    const head = p.querySelector(".node-panel-head[data-node-id]");  // a step's panel: back to its card (redrawn since)
    const back = (head && card(head.getAttribute("data-node-id"))) || opener;
    p.hidden = true;
    markOpen(null);
    if (window.location.pathname.indexOf("/nodes/") !== -1) {  // opened as its own page: back to the builder's URL
      history.replaceState(null, "", window.location.pathname.replace(/\/nodes\/[^/]+$/, ""));
    }
    if (back && document.contains(back)) { back.focus(); }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    const target = event.detail.target;  // what opened the panel, not a form inside it
    if (target && target.id === "builder-panel" && !target.contains(event.detail.elt)) { opener = event.detail.elt; }
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    const p = panel();
    if (event.detail.target !== p) { return; }
    p.hidden = false;
    const head = p.querySelector("[data-node-id]");
    markOpen(head ? head.getAttribute("data-node-id") : null);
    const title = p.querySelector("#panel-title") || p;
    title.focus();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && panel() && !panel().hidden) {
      event.preventDefault();
      close();
    }
  });

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-panel]")) {
      event.preventDefault();
      close();
      return;
    }
    const link = event.target.closest('a[href^="#node-"], a[href="#trigger-card"]');
    const target = link && document.getElementById(link.getAttribute("href").slice(1));
    if (target) {
      event.preventDefault();
      target.scrollIntoView({ block: "center", inline: "center", behavior: "smooth" });
      target.focus({ preventScroll: true });
      history.replaceState(null, "", link.getAttribute("href"));
    }
  });

  function centreOnTrigger() {  // a flowchart wider than the canvas opens with its trigger in the middle
    const canvas = document.getElementById("canvas");
    const trigger = document.getElementById("trigger-card");
    if (!canvas || !trigger || canvas.scrollWidth <= canvas.clientWidth) { return; }
    const box = canvas.getBoundingClientRect(), card = trigger.getBoundingClientRect();
    canvas.scrollLeft += card.left + card.width / 2 - (box.left + canvas.clientWidth / 2);
  }

  document.addEventListener("DOMContentLoaded", function () {
    centreOnTrigger();
    const p = panel();
    if (p && !p.hidden) {  // the page was opened at a step's URL: the panel is open already
      opener = card(p.getAttribute("data-node-id"));
      markOpen(p.getAttribute("data-node-id"));
      const title = p.querySelector("#panel-title");
      if (title) { title.focus(); }
    }
  });
})();

// Editing: Ctrl+Z / Ctrl+Shift+Z press the undo and redo buttons (not while typing in a field), the step picker's
// search filters its list, and a deleted step's panel closes when the server says so.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || event.key.toLowerCase() !== "z") { return; }
    if (event.target.closest("input, textarea, select, [contenteditable]")) { return; }
    event.preventDefault();
    // a change still in flight (htmx marks its element): this one waits for the new draft revision, else it is refused
    if (document.querySelector(".htmx-request")) { queued = event.shiftKey ? "redo-button" : "undo-button"; return; }
    press(event.shiftKey ? "redo-button" : "undo-button");
  });

  let queued = null;
  function press(id) {
    const button = document.getElementById(id);
    if (button && !button.disabled) { button.click(); }
  }
  document.addEventListener("htmx:afterSettle", function () {
    if (queued && !document.querySelector(".htmx-request")) {
      const id = queued;
      queued = null;
      press(id);
    }
  });

  document.addEventListener("input", function (event) {
    if (!event.target.matches("[data-picker-search]")) { return; }
    const words = event.target.value.toLowerCase().trim().split(/\s+/).filter(Boolean);
    document.querySelectorAll(".picker-item").forEach(function (item) {
      const text = item.getAttribute("data-search");
      item.hidden = !words.every(function (w) { return text.indexOf(w) !== -1; });
    });
    document.querySelectorAll(".picker-group").forEach(function (group) {
      group.hidden = !group.querySelector(".picker-item:not([hidden])");
    });
  });

  // A form saved by its change event is a save: htmx would add the op of the button that last had focus (Tab from a
  // rule's value lands on "Remove rule"), and that button's op must only run when the button itself is pressed.
  document.addEventListener("htmx:configRequest", function (event) {
    const trigger = event.detail.triggeringEvent;
    if (trigger && trigger.type === "change" && event.detail.formData.has("op")) {
      event.detail.formData.set("op", "save");
    }
  });

  document.addEventListener("builder:close-panel", function () {
    const panel = document.getElementById("builder-panel");
    if (panel) { panel.hidden = true; panel.innerHTML = ""; }
  });
})();
