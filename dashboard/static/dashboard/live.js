// Live counts without a reload. The page names the API's stream of count changes (data-stream, GET /stream,
// Server-Sent Events): each `snapshot` or `count` event is written where the page shows that space's count.
// Where the stream cannot be had (a server without the ASGI process), it asks GET /space/ every 2 seconds
// instead (data-poll). Nothing else on the page changes.
(function () {
  "use strict";
  var body = document.body;
  var live = document.querySelector("[data-live]");
  var updated = document.querySelector("[data-updated]");

  function say(text, stale) {
    if (updated) updated.textContent = text;
    if (live) live.classList.toggle("stale", Boolean(stale));
  }

  function show(spaceId, count) {
    document.querySelectorAll('[data-space-id="' + spaceId + '"]').forEach(function (card) {
      var shown = card.querySelector("[data-count]");
      if (shown && shown.textContent !== String(count)) {
        shown.textContent = count;
        card.classList.add("changed");
        setTimeout(function () { card.classList.remove("changed"); }, 1500);
      }
      var bar = card.querySelector("[data-bar]");
      var capacity = Number(card.dataset.capacity);
      if (bar && capacity) {
        var percent = Math.round((100 * count) / capacity);
        bar.style.setProperty("--fill", Math.max(0, Math.min(percent, 100)) + "%");
        bar.setAttribute("aria-label", percent + "% of capacity");
        bar.classList.toggle("full", percent >= 100);
      }
    });
  }

  var polling = null;
  function poll() {
    if (document.hidden) return; // a tab nobody looks at asks nothing; it catches up when shown
    fetch(body.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (answer) {
        (Array.isArray(answer) ? answer : [answer]).forEach(function (space) { show(space.id, space.count); });
        say("Updated " + new Date().toLocaleTimeString() + ".");
      })
      .catch(function () { say("Cannot reach the service; retrying.", true); });
  }
  function startPolling() {
    if (polling === null && body.dataset.poll) {
      polling = setInterval(poll, 2000);
      document.addEventListener("visibilitychange", poll);
    }
  }

  if (!body.dataset.stream || !window.EventSource) {
    startPolling();
    return;
  }
  var opened = false;
  var source = new EventSource(body.dataset.stream);
  function onCount(event) {
    var change = JSON.parse(event.data);
    show(change.space_id, change.count);
    say("Live: updated " + new Date().toLocaleTimeString() + ".");
  }
  source.addEventListener("snapshot", onCount);
  source.addEventListener("count", onCount);
  source.addEventListener("open", function () {
    opened = true;
    say("Live.");
  });
  source.addEventListener("error", function () {
    if (!opened) { // never connected: this server has no stream; ask now and then instead
      source.close();
      startPolling();
    } else {
      say("Reconnecting…", true); // EventSource reconnects by itself, with Last-Event-ID
    }
  });
})();
