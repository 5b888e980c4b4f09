// Live counts without a reload: every 2 seconds, ask the API (with the page's session) for the count of every
// space on the page, and write it where the page shows it. Nothing else on the page changes.
(function () {
  "use strict";
  var url = document.body.dataset.poll;
  if (!url) return;
  var live = document.querySelector("[data-live]");
  var updated = document.querySelector("[data-updated]");
  var failures = 0;

  function show(space) {
    document.querySelectorAll('[data-space-id="' + space.id + '"]').forEach(function (card) {
      var count = card.querySelector("[data-count]");
      if (count && count.textContent !== String(space.count)) {
        count.textContent = space.count;
        card.classList.add("changed");
        setTimeout(function () { card.classList.remove("changed"); }, 1500);
      }
      var bar = card.querySelector("[data-bar]");
      if (bar && space.capacity) {
        var percent = Math.round((100 * space.count) / space.capacity);
        bar.style.setProperty("--fill", Math.max(0, Math.min(percent, 100)) + "%");
        bar.setAttribute("aria-label", percent + "% of capacity");
        bar.classList.toggle("full", percent >= 100);
      }
    });
  }

  function poll() {
    if (document.hidden) return; // a tab nobody looks at asks nothing; it catches up when shown
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        (Array.isArray(body) ? body : [body]).forEach(show);
        failures = 0;
        if (live) live.classList.remove("stale");
        if (updated) updated.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      })
      .catch(function () {
        failures += 1;
        if (live && failures >= 3) live.classList.add("stale");
        if (updated && failures >= 3) updated.textContent = "Cannot reach the service; retrying.";
      });
  }

  setInterval(poll, 2000);
  document.addEventListener("visibilitychange", poll);
})();
