// Behaviour for every page, kept out of the HTML so the Content-Security-Policy can forbid
// inline script: elements opt in with data- attributes. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // <select data-autosubmit>: choosing an option submits its form (the language switcher).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { keepTyped(); select.form.submit(); });
  });
  // <button data-confirm="question">: ask before submitting.
  document.querySelectorAll("[data-confirm]").forEach(function (el) {
    el.addEventListener("click", function (event) {
      if (!window.confirm(el.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
  restoreTyped();
  focusFirstError();
  restoreUnsent();
  document.querySelectorAll("form[enctype='multipart/form-data']").forEach(uploadWithProgress);
  document.querySelectorAll("form").forEach(keepPersonalDataOutOfAddress);
});

// A GET form's fields become the page's address, which browser history, proxies and logs keep:
// an ID number or a mobile number typed into one (a filter box) is stopped before it is sent,
// with the body's data-personal-data message on the field. The server refuses such an address
// too (healthkit.middleware.PersonalDataAddressMiddleware); look-ups by ID or phone are POSTs.
var PERSONAL_DATA = /(^|[^0-9A-Za-z])([1-9][0-9]{16}[0-9Xx]|(\+?86[- ]?)?1[3-9][0-9]{9})(?![0-9A-Za-z])/;

function keepPersonalDataOutOfAddress(form) {
  if ((form.getAttribute("method") || "get").toLowerCase() !== "get") { return; }
  form.addEventListener("submit", function (event) {
    var field = Array.prototype.find.call(form.querySelectorAll("input, textarea"), function (f) {
      return f.type !== "hidden" && PERSONAL_DATA.test(f.value);
    });
    if (!field) { return; }
    event.preventDefault();
    field.setCustomValidity(document.body.getAttribute("data-personal-data") || "");
    field.reportValidity();
    field.addEventListener("input", function () { field.setCustomValidity(""); }, { once: true });
  });
}

// A page answered with form errors: put the keyboard (and a screen reader) on the first field in
// error, which names its message through aria-describedby; else on the first announced error.
function focusFirstError() {
  if (document.querySelector("[autofocus]")) { return; }
  var field = document.querySelector("main [aria-invalid='true']");
  if (field) { field.focus(); return; }
  var alert = document.querySelector("main [role='alert']");
  if (alert) { alert.setAttribute("tabindex", "-1"); alert.focus(); }
}

// A form that carries files is sent in the background so the page can show how much has gone:
// a 3 MB screenshot takes a minute on a slow mobile line. The answer then replaces the page as a
// normal submission would (the page at the end of a redirect, or the form again with its errors).
// Without this script the browser's own submission works the same, without the figure.
function uploadWithProgress(form) {
  var status = document.createElement("p");
  status.className = "upload-status";
  status.setAttribute("role", "status");
  status.hidden = true;
  var bar = document.createElement("progress");
  bar.max = 100;
  var text = document.createElement("span");
  status.appendChild(bar);
  status.appendChild(text);
  form.appendChild(status);
  var busy = false;
  form.addEventListener("submit", function (event) {
    var size = 0;
    form.querySelectorAll("input[type=file]").forEach(function (input) {
      for (var i = 0; i < input.files.length; i++) { size += input.files[i].size; }
    });
    if (!size || !window.FormData || !window.XMLHttpRequest) { return; }
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) { data.append(event.submitter.name, event.submitter.value); }
    var body = document.body.dataset;
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    status.hidden = false;
    status.classList.remove("error");
    bar.hidden = false;
    bar.value = 0;
    text.textContent = " " + body.uploadStarted;
    // Not form.action: a control named "action" (a button) shadows that property.
    var target = new URL(form.getAttribute("action") || "", window.location.href).href.split("#")[0];
    var xhr = new XMLHttpRequest();
    xhr.open("POST", target);
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) { return; }
      var percent = Math.floor(e.loaded * 100 / e.total);
      bar.value = percent;
      text.textContent = " " + body.uploadProgress + " " + percent + "%";
    });
    xhr.addEventListener("load", function () {
      // The answer as the browser would have shown it: the page at the end of any redirect, once
      // (fetching it again would lose a one-time message such as "your session has expired").
      if (xhr.responseURL) { window.history.replaceState(null, "", xhr.responseURL); }
      document.open();
      document.write(xhr.responseText);
      document.close();
    });
    var failed = function () {
      busy = false;
      buttons.forEach(function (b) { b.disabled = false; });
      bar.hidden = true;
      status.classList.add("error");
      text.textContent = body.uploadFailed;
    };
    xhr.addEventListener("error", failed);
    xhr.addEventListener("timeout", failed);
    xhr.send(data);
  });
}

// A form sent after the session ended: the server kept what was typed and shows it (#unsent-form)
// on the page the person is back on; put it back into the same form (the one sending to the same
// address), into the fields still empty, so sending it again is one click. Hidden fields are the
// fresh page's own (its version, its one-time token) and are left alone.
function restoreUnsent() {
  var card = document.getElementById("unsent-form");
  if (!card) { return; }
  var action = card.getAttribute("data-action");
  var form = Array.prototype.find.call(document.querySelectorAll("main form"), function (f) {
    return new URL(f.getAttribute("action") || "", window.location.href).pathname === action;
  });
  if (!form) { return; }
  var first = null;
  var left = 0;
  card.querySelectorAll("textarea[data-name]").forEach(function (kept) {
    var value = kept.value;
    var placed = false;
    form.querySelectorAll("[name]").forEach(function (field) {
      if (field.name !== kept.getAttribute("data-name") || field.type === "hidden" || field.type === "file") { return; }
      if (field.type === "radio" || field.type === "checkbox") {
        if (field.value === value) { field.checked = true; placed = true; }
      } else if (field.tagName === "SELECT") {
        field.value = value;
        placed = field.value === value;
      } else if (!field.value || field.value === value) {
        field.value = value;
        placed = true;
      }
      if (placed) { first = first || field; }
    });
    // What is back in the form need not be copied: the card keeps only what found no place.
    if (placed) { kept.closest("label").hidden = true; } else { left += 1; }
  });
  card.hidden = left === 0;
  if (first) {
    first.scrollIntoView({block: "center"});
    if (!document.querySelector("[autofocus]")) { first.focus(); }
  }
}

// Switching the language loads the page again: what was typed into its forms and not yet sent
// (a long description, a call note) would be gone. Keep it in this tab's sessionStorage for that
// one load, by form and field, and put it back; never a password, a file or a hidden field.
var TYPED_KEY = "healthkit:typed";

function typedFields(form) {
  return Array.prototype.filter.call(form.querySelectorAll("input, textarea, select"), function (field) {
    return field.name && !field.disabled && ["hidden", "password", "file", "submit", "button"].indexOf(field.type) < 0;
  });
}

function keepTyped() {
  var typed = [];
  document.querySelectorAll("main form").forEach(function (form, index) {
    typedFields(form).forEach(function (field) {
      if (field.type === "radio" || field.type === "checkbox") {
        if (field.checked !== field.defaultChecked) { typed.push([index, field.name, field.value, field.checked]); }
      } else if (field.tagName === "SELECT") {
        var changed = Array.prototype.some.call(field.options, function (o) { return o.selected !== o.defaultSelected; });
        if (changed) { typed.push([index, field.name, field.value]); }
      } else if (field.value !== field.defaultValue) {
        typed.push([index, field.name, field.value]);
      }
    });
  });
  if (!typed.length) { return; }
  try {
    window.sessionStorage.setItem(TYPED_KEY, JSON.stringify({path: window.location.pathname, typed: typed}));
  } catch (e) { /* storage refused (private mode, full): the switch works, the text is not kept */ }
}

function restoreTyped() {
  var kept;
  try {
    kept = JSON.parse(window.sessionStorage.getItem(TYPED_KEY) || "null");
    window.sessionStorage.removeItem(TYPED_KEY);
  } catch (e) { return; }
  if (!kept || kept.path !== window.location.pathname) { return; }
  var forms = document.querySelectorAll("main form");
  kept.typed.forEach(function (entry) {
    var form = forms[entry[0]];
    if (!form) { return; }
    typedFields(form).forEach(function (field) {
      if (field.name !== entry[1]) { return; }
      if (field.type === "radio" || field.type === "checkbox") {
        if (field.value === entry[2]) { field.checked = entry[3]; }
      } else {
        field.value = entry[2];
      }
    });
  });
}
