// stackyard dashboard: small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("submit", function (event) {
  // Forms that ask before they act (instance actions have a confirmation page of their own).
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("click", function (event) {
  // A button of a form with several actions that asks before its own action only.
  var button = event.target.closest && event.target.closest("button[data-confirm-click]");
  if (button && !window.confirm(button.getAttribute("data-confirm-click"))) {
    event.preventDefault();
  }
});
document.addEventListener("htmx:afterSwap", function (event) {
  // A progress block that finished on a page whose result is rendered by the server: show it.
  var block = event.detail.target;
  if (!block || !block.querySelector) { return; }
  var finished = document.querySelector("[data-reload-when-final][data-state='succeeded'], " +
    "[data-reload-when-final][data-state='failed'], [data-reload-when-final][data-state='cancelled']");
  if (finished && !document.body.hasAttribute("data-reloading")) {
    document.body.setAttribute("data-reloading", "true");
    window.location.reload();
  }
});
