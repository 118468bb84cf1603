// resque-compat dashboard: live polling and confirmations. No inline script (CSP: script-src 'self').
(function () {
  "use strict";

  // Ask before destructive posts: forms carry data-confirm="question".
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Live poll: a checkbox with data-url (an HTML fragment) and data-target (the element to refresh).
  function setupPoll(box) {
    var target = document.getElementById(box.getAttribute("data-target"));
    var url = box.getAttribute("data-url");
    var seconds = parseInt(box.getAttribute("data-seconds"), 10) || 2;
    var timer = null;
    var label = box.closest("label");

    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          // The fragment is rendered (and escaped) by the server from our own template.
          target.innerHTML = html;
          target.setAttribute("data-polled", new Date().toISOString());
          document.dispatchEvent(new CustomEvent("resque:polled"));  // charts.js draws the new numbers
        })
        .catch(function () { /* keep the last view; try again next tick */ });
    }

    function apply() {
      if (timer) { clearInterval(timer); timer = null; }
      if (box.checked) {
        refresh();
        timer = setInterval(refresh, seconds * 1000);
      }
      if (label) { label.classList.toggle("on", box.checked); }
      document.dispatchEvent(new CustomEvent("resque:poll", { detail: { on: box.checked } }));
      try { localStorage.setItem("resque-live-poll", box.checked ? "1" : "0"); } catch (e) { /* private mode */ }
    }

    box.addEventListener("change", apply);
    try { box.checked = localStorage.getItem("resque-live-poll") === "1"; } catch (e) { /* ignore */ }
    apply();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("live-poll");
    if (box) { setupPoll(box); }
  });
})();
