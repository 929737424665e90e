// stackyard dashboard: small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("submit", function (event) {
  // Forms that ask before they act (the no-JavaScript path has a confirmation page of its own).
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
