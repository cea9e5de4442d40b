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
    p.hidden = true;
    markOpen(null);
    if (window.location.pathname.indexOf("/nodes/") !== -1) {  // opened as its own page: back to the builder's URL
      history.replaceState(null, "", window.location.pathname.replace(/\/nodes\/[^/]+$/, ""));
    }
    if (opener && document.contains(opener)) { opener.focus(); }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.target && event.detail.target.id === "builder-panel") { opener = event.detail.elt; }
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
