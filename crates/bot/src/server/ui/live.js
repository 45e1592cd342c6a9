// Courier's dashboard, live: while the tab is visible, every few seconds the page is
// fetched again and each `[data-live]` part (the list, the counts, a delivery's facts and
// attempts) is replaced by its new version, so a delivery appears and moves on without a
// reload. Forms are not replaced, so nothing someone is choosing or pressing changes under
// them. A hidden tab fetches nothing. Without this script the pages are the same, static.
(function () {
  "use strict";
  var PERIOD_MS = 3000;
  var timer = null;

  function stop() {
    if (timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  }

  function refresh() {
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        // Signed out or expired (sent to sign-in), or an error page: leave the page be.
        if (!response.ok || response.redirected) {
          stop();
          return null;
        }
        return response.text();
      })
      .then(function (text) {
        if (text === null) {
          return;
        }
        var next = new DOMParser().parseFromString(text, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (part) {
          var fresh = next.getElementById(part.id);
          if (fresh && fresh.innerHTML !== part.innerHTML) {
            part.innerHTML = fresh.innerHTML;
          }
        });
      })
      .catch(function () {
        // Offline for a moment: the next tick tries again.
      });
  }

  function start() {
    if (timer === null) {
      timer = setInterval(refresh, PERIOD_MS);
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      refresh();
      start();
    } else {
      stop();
    }
  });
  if (document.visibilityState === "visible") {
    start();
  }
})();
