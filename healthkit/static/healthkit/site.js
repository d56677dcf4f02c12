// Behaviour for every page, kept out of the HTML so the Content-Security-Policy can forbid
// inline script: elements opt in with data- attributes.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // <select data-autosubmit>: choosing an option submits its form (the language switcher).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  // <button data-confirm="question">: ask before submitting.
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (event) {
      if (!window.confirm(el.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
});
