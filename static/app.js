/* Goldsmith's small behaviours. Every page works without this file; it only adds comfort.
   No inline scripts anywhere (the Content-Security-Policy forbids them): hooks are data-* attributes. */
(function () {
  "use strict";

  // 1. The browser's time zone, for server-rendered times (see portal/timezones.py).
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    // IANA names are letters, digits, "_", "+", "-" and "/": all safe in a cookie as they are.
    if (zone && /^[A-Za-z0-9_+\/-]+$/.test(zone) && document.cookie.indexOf("goldsmith_tz=" + zone) === -1) {
      document.cookie = "goldsmith_tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* very old browsers: times stay in the server's zone, labelled */ }

  // 2. Copy buttons: <button data-copy="text"> (or data-copy-target="#id") copies and says so.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy], [data-copy-target]");
    if (!button) { return; }
    var text = button.getAttribute("data-copy");
    if (text === null) {
      var target = document.querySelector(button.getAttribute("data-copy-target"));
      text = target ? target.textContent : "";
    }
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    copyText(text).then(function () {
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
    }, function () {
      button.textContent = "Select and copy";
    });
    window.setTimeout(function () {
      button.textContent = label;
      button.removeAttribute("data-copied");
    }, 2000);
  });

  // 3. Copy buttons are hidden without JavaScript (they could not work); show them now.
  function revealCopyButtons(root) {
    root.querySelectorAll("[data-copy], [data-copy-target]").forEach(function (button) { button.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", function () { revealCopyButtons(document); });
  document.addEventListener("htmx:afterSwap", function (event) { revealCopyButtons(event.detail.elt.parentNode || document); });

  // 4. A polled fragment is replaced every few seconds: keep the <details> the reader opened open.
  var openDetails = [];
  document.addEventListener("htmx:beforeSwap", function (event) {
    openDetails = [];
    event.detail.target.querySelectorAll("details[id][open]").forEach(function (el) { openDetails.push(el.id); });
  });
  document.addEventListener("htmx:afterSwap", function () {
    openDetails.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.open = true; }
    });
  });

  // 5. Long operations: a form with data-busy="Publishing…" disables its button and says so,
  //    so nobody clicks twice while the server works.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var text = form.getAttribute("data-busy");
    if (!text || event.defaultPrevented) { return; }
    var button = event.submitter || form.querySelector("button[type=submit], button:not([type])");
    if (!button) { return; }
    window.setTimeout(function () {  // after the browser has taken the button's name/value
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      button.textContent = text;
    }, 0);
  });

  // 6. Confirmations for destructive buttons: <button data-confirm="Cancel this build?">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // Live build log: poll only while the panel is open and the page is visible (a closed panel or
  // a background tab costs Azure nothing); follow keeps the newest line in view.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var poller = event.target;
    if (!poller.hasAttribute || !poller.hasAttribute("data-log-poll")) { return; }
    var panel = poller.closest("details");
    if (document.visibilityState !== "visible" || (panel && !panel.open)) { event.preventDefault(); }
  });
  document.addEventListener("htmx:afterSwap", function () {
    var log = document.getElementById("live-log");
    var panel = document.getElementById("log-panel");
    if (log && panel && panel.getAttribute("data-follow") === "true") { log.scrollTop = log.scrollHeight; }
  });
})();
