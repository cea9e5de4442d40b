// The builder's test panel: when a test starts, follow the workflow's live stream and light each card as its step
// completes (running, completed, failed with the error as a caption), announcing progress to screen readers. The
// run gets its id here (run_id) so its events can be told from other runs'. A worker runs the test: the POST answers
// at once with a placeholder, which fetches the results when the run's end comes over the stream (or by polling).
// When the results arrive, every card gets the status they give, so the canvas ends right even if an event was missed.
(function () {
  "use strict";
  const STATES = ["test-running", "test-completed", "test-failed"];
  const WORDS = { completed: "completed", failed: "failed", waiting: "waiting (fast-forwarded)", running: "running" };
  const OPEN_TIMEOUT_MS = 2000;  // past this the test runs anyway; the results still colour the cards
  let source = null, runId = null, settled = true, starting = false;

  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  function card(nodeId) { return document.querySelector('.fc-card[data-node-id="' + CSS.escape(nodeId) + '"]'); }

  function nameOf(nodeId) {
    const name = card(nodeId) && card(nodeId).querySelector(".fc-name");
    return name ? name.textContent.trim() : nodeId;
  }

  function announce(text) {
    const live = document.getElementById("test-live");
    if (live) { live.textContent = text; }
  }

  function reset() {
    document.querySelectorAll(".fc-card[data-test-status]").forEach(function (c) {
      c.classList.remove.apply(c.classList, STATES);
      c.removeAttribute("data-test-status");
    });
    document.querySelectorAll(".fc-test-error").forEach(function (e) { e.remove(); });
  }

  function mark(nodeId, status, error) {
    const c = card(nodeId);
    if (!c) { return; }
    const state = status === "completed" ? "test-completed" : status === "failed" ? "test-failed" : "test-running";
    c.classList.remove.apply(c.classList, STATES);
    c.classList.add(state);
    c.setAttribute("data-test-status", status);
    let caption = c.querySelector(".fc-test-error");
    if (state === "test-failed" && error) {
      if (!caption) {
        caption = document.createElement("span");
        caption.className = "fc-test-error";
        (c.querySelector(".fc-body") || c).appendChild(caption);
      }
      caption.textContent = error;
    } else if (caption) {
      caption.remove();
    }
  }

  function stop() {
    if (source) { source.close(); source = null; }
  }

  function mine(event) {
    if (settled) { return null; }
    const data = JSON.parse(event.data);
    return data.executionId === runId ? data : null;
  }

  function onStep(event) {
    const data = mine(event);
    if (!data) { return; }
    // A test never stays waiting: a card still shown waiting has been fast-forwarded once a later step completes.
    document.querySelectorAll(".fc-card.test-running").forEach(function (c) {
      if (c.getAttribute("data-node-id") !== data.nodeId) { mark(c.getAttribute("data-node-id"), "completed"); }
    });
    mark(data.nodeId, data.status, data.error);
    announce(nameOf(data.nodeId) + " " + (WORDS[data.status] || data.status) + (data.error ? ": " + data.error : "."));
  }

  function follow(url) {
    stop();
    return new Promise(function (resolve) {
      source = new EventSource(url, { withCredentials: true });
      source.addEventListener("open", resolve, { once: true });
      source.addEventListener("step_completed", onStep);
      source.addEventListener("execution_started", function (event) {
        if (mine(event)) { announce("Test started."); }
      });
      ["execution_completed", "execution_failed", "execution_cancelled"].forEach(function (name) {
        source.addEventListener(name, function (event) {
          const pending = mine(event) && document.querySelector("[data-test-pending]");
          if (pending) { htmx.trigger(pending, "atlas-test-ended"); }
        });
      });
      window.setTimeout(resolve, OPEN_TIMEOUT_MS);
    });
  }

  // Before the POST leaves: reset the cards, name the run, and open the stream so no event of the run is missed.
  document.addEventListener("htmx:confirm", function (event) {
    const form = event.detail.elt;
    if (!form || form.id !== "test-form") { return; }
    event.preventDefault();
    if (starting) { return; }
    starting = true;
    reset();
    runId = newId();
    settled = false;
    form.querySelector("[data-test-run-id]").value = runId;
    form.classList.add("is-running");
    announce("Starting the test…");
    follow(form.getAttribute("data-stream-url")).then(function () {
      starting = false;
      event.detail.issueRequest(true);
    });
  });

  function finish(container) {
    if (container && container.querySelector("[data-test-pending]")) { return; }  // started; the results follow
    settled = true;
    stop();
    const form = document.getElementById("test-form");
    if (form) { form.classList.remove("is-running"); }
    const result = container && container.querySelector("[data-test-status]");
    reset();
    if (!result || !result.hasAttribute("data-test-run")) {
      announce("The test did not run. " + (result ? result.textContent.trim() : ""));
      return;
    }
    const steps = result.querySelectorAll("[data-step-id]");
    steps.forEach(function (s) {
      mark(s.getAttribute("data-step-id"), s.getAttribute("data-step-status"), s.getAttribute("data-step-error"));
    });
    const failed = result.querySelector('[data-step-status="failed"]');
    announce("Test " + result.getAttribute("data-test-status") + ": " + steps.length + " step" +
             (steps.length === 1 ? "" : "s") + " ran" +
             (failed ? "; " + nameOf(failed.getAttribute("data-step-id")) + " failed." : "."));
  }

  // The results (or the refusal) are in: every card takes its final status.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "test-result") { finish(event.detail.target); }
  });

  document.addEventListener("htmx:sendError", function (event) {
    if (event.detail.elt && event.detail.elt.id === "test-form") { finish(null); }
  });

  // Enter in the contact search box searches; it does not run the test.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches && event.target.matches("[data-test-search]")) {
      event.preventDefault();
    }
  });
})();
