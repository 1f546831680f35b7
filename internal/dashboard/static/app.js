// Samplit dashboard script: confirmations for lifecycle buttons and the live
// refresh of a running experiment's (or funnel's) numbers. No dependencies,
// no build step. The pages work without it: buttons then post without asking,
// and numbers refresh when the page is reloaded.
(function () {
  "use strict";

  // Confirmations: a form with data-confirm asks before it is sent.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var msg = form && form.getAttribute && form.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) {
      ev.preventDefault();
    }
  });

  // Focus the error summary of a form that came back with errors, so that
  // keyboard and screen-reader users hear what to fix.
  var summary = document.getElementById("form-errors");
  if (summary) {
    summary.focus();
  }

  // Live refresh: #live holds a server-rendered fragment whose root carries
  // data-running and data-status. While it runs, fetch the fragment again
  // every few seconds and swap it in; when the status changes (paused
  // elsewhere, completed by the decision rule) reload the whole page so that
  // its buttons match.
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var url = live.getAttribute("data-live-url");
  var seconds = parseInt(live.getAttribute("data-refresh"), 10) || 5;
  var root = live.querySelector(".live");
  if (!url || !root || root.getAttribute("data-running") !== "true") {
    return;
  }
  var status = root.getAttribute("data-status");
  var busy = false;

  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (res) {
        if (res.status === 401) {
          window.location.reload(); // the session ended: reach the sign-in form
          return null;
        }
        return res.ok ? res.text() : null;
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        var tpl = document.createElement("template");
        tpl.innerHTML = html; // same-origin HTML, escaped by html/template
        var next = tpl.content.querySelector(".live");
        if (!next) {
          return;
        }
        if (next.getAttribute("data-status") !== status) {
          window.location.reload();
          return;
        }
        live.replaceChildren(tpl.content);
        if (next.getAttribute("data-running") !== "true") {
          window.clearInterval(timer);
        }
      })
      .catch(function () { /* offline for a moment: try again next tick */ })
      .finally(function () { busy = false; });
  }

  var timer = window.setInterval(refresh, seconds * 1000);
})();
