// Small page behaviours for the server-rendered screens. No build step, no
// inline handlers: everything is wired by event delegation on document, so
// content swapped in by htmx works too. The CSP forbids eval and inline code.
(function () {
  "use strict";

  // --- Theme: loaded in <head> (not deferred) so the chosen theme applies
  // before the first paint. localStorage "theme" is "dark" or "light" once
  // the toggle was used; without it the page follows prefers-color-scheme.
  var root = document.documentElement;
  function storedTheme() {
    try { return localStorage.getItem("theme"); } catch (err) { return null; }
  }
  function isDark() {
    if (root.classList.contains("dark")) return true;
    if (root.classList.contains("light")) return false;
    return !!(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  }
  function setTheme(t) {
    root.classList.remove("dark", "light");
    if (t === "dark" || t === "light") root.classList.add(t);
    document.querySelectorAll("[data-theme-toggle]").forEach(function (b) {
      b.setAttribute("aria-pressed", isDark() ? "true" : "false");
    });
  }
  setTheme(storedTheme());

  // --- Copy buttons: [data-copy-target="#id"] or [data-copy="text"] -------------
  // After a successful copy the button's data-copy-state flashes
  // check → copy → done: the check icon shows, the copy icon comes back, and
  // "done" stays as the resting state (announced as "Copied"). Without a
  // clipboard the text is selected so the user can press Ctrl+C.
  function showIcon(btn, name) {
    btn.querySelectorAll("[data-copy-icon]").forEach(function (el) {
      el.classList.toggle("hidden", el.getAttribute("data-copy-icon") !== name);
    });
  }
  function selectText(el) {
    if (!el) return;
    if (el.select) { el.focus(); el.select(); return; }
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
  function copy(btn) {
    var sel = btn.getAttribute("data-copy-target");
    var target = sel ? document.querySelector(sel) : null;
    var text = btn.getAttribute("data-copy");
    if (text === null && target) text = "value" in target ? target.value : target.textContent;
    if (text === null) return;
    var status = btn.querySelector("[data-copy-status]");
    var fallback = function () {
      selectText(target);
      btn.setAttribute("data-copy-state", "select");
      btn.title = "Press Ctrl+C to copy";
      if (status) status.textContent = "Selected: press Ctrl+C to copy";
    };
    if (!navigator.clipboard || !window.isSecureContext) { fallback(); return; }
    navigator.clipboard.writeText(text).then(function () {
      btn.setAttribute("data-copy-state", "check");
      showIcon(btn, "check");
      if (status) status.textContent = "Copied";
      setTimeout(function () {
        btn.setAttribute("data-copy-state", "copy");
        showIcon(btn, "copy");
        setTimeout(function () {
          btn.setAttribute("data-copy-state", "done");
          var label = btn.querySelector("[data-copy-label]");
          if (label) label.textContent = "Copied";
          btn.title = "Copied. Click to copy again";
        }, 150);
      }, 900);
    }, fallback);
  }

  // --- Dialogs: [data-dialog-open="#id"], [data-dialog-close] ---------------------
  var opener = new WeakMap();
  function openDialog(dlg, from) {
    if (!dlg || dlg.open) return;
    if (from) opener.set(dlg, from);
    dlg.showModal();
    var first = dlg.querySelector("[autofocus]") || dlg.querySelector("input:not([type=hidden]), select, textarea, button");
    if (first) first.focus();
  }
  document.addEventListener("close", function (e) {
    var from = opener.get(e.target);
    if (from && document.contains(from)) from.focus();
  }, true);

  document.addEventListener("click", function (e) {
    var t = e.target.closest ? e.target : e.target.parentElement;
    if (!t) return;
    var theme = t.closest("[data-theme-toggle]");
    if (theme) {
      var next = isDark() ? "light" : "dark";
      try { localStorage.setItem("theme", next); } catch (err) { /* private mode: this page only */ }
      setTheme(next);
      return;
    }
    var btn = t.closest("[data-copy-target], [data-copy]");
    if (btn) { e.preventDefault(); copy(btn); return; }
    var open = t.closest("[data-dialog-open]");
    if (open) { e.preventDefault(); openDialog(document.querySelector(open.getAttribute("data-dialog-open")), open); return; }
    var close = t.closest("[data-dialog-close]");
    if (close) { var d = close.closest("dialog"); if (d) { e.preventDefault(); d.close(); } }
  });

  // --- Confirmations: a styled <dialog> instead of window.confirm ---------------
  // hx-confirm (htmx buttons) and <form data-confirm="…"> (plain posts) ask
  // here. The focus starts on Cancel, Esc cancels, the confirm button is named
  // after the action, and the focus goes back to the button that asked.
  var confirmDlg = null, confirmThen = null;
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text) n.textContent = text;
    return n;
  }
  function confirmDialog() {
    if (confirmDlg) return confirmDlg;
    var d = el("dialog", "confirm-dialog w-full max-w-md rounded-lg bg-white p-0 text-gray-900 shadow-xl backdrop:bg-gray-900/50 dark:bg-gray-800 dark:text-gray-100");
    d.id = "confirm-dialog";
    d.setAttribute("aria-labelledby", "confirm-title");
    d.setAttribute("aria-describedby", "confirm-message");
    var body = el("div", "px-5 pt-5 pb-4");
    var title = el("h2", "text-base font-semibold", "Please confirm");
    title.id = "confirm-title";
    var msg = el("p", "mt-2 text-sm text-gray-600 dark:text-gray-300");
    msg.id = "confirm-message";
    body.appendChild(title);
    body.appendChild(msg);
    var bar = el("div", "flex justify-end gap-2 border-t border-gray-200 px-5 py-3 dark:border-gray-700");
    var no = el("button", "btn btn-secondary", "Cancel");
    no.type = "button";
    no.setAttribute("data-testid", "confirm-cancel");
    var yes = el("button", "btn btn-danger", "Confirm");
    yes.type = "button";
    yes.setAttribute("data-testid", "confirm-ok");
    bar.appendChild(no);
    bar.appendChild(yes);
    d.appendChild(body);
    d.appendChild(bar);
    no.addEventListener("click", function () { d.close(); });
    yes.addEventListener("click", function () {
      var then = confirmThen;
      confirmThen = null;
      d.close();
      if (then) then();
    });
    d.addEventListener("close", function () { confirmThen = null; });
    document.body.appendChild(d);
    confirmDlg = d;
    return d;
  }
  function actionLabel(from) {
    var t = from && from.textContent ? from.textContent.replace(/\s+/g, " ").trim() : "";
    return t && t.length <= 40 ? t : "Confirm";
  }
  function askConfirm(message, from, then) {
    var d = confirmDialog();
    d.querySelector("#confirm-message").textContent = message;
    var yes = d.querySelector("[data-testid=confirm-ok]");
    yes.textContent = actionLabel(from);
    var danger = from && from.classList && !from.classList.contains("btn-danger") ? "btn btn-primary" : "btn btn-danger";
    yes.className = danger;
    if (d.open) d.close();
    confirmThen = then;
    openDialog(d, from);
  }
  document.addEventListener("htmx:confirm", function (e) {
    if (!e.detail || !e.detail.question) return;
    e.preventDefault();
    askConfirm(e.detail.question, e.detail.elt, function () { e.detail.issueRequest(true); });
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var msg = form.getAttribute && form.getAttribute("data-confirm");
    if (!msg) return;
    if (form.__confirmed) { form.__confirmed = false; return; }
    e.preventDefault();
    var submitter = e.submitter || null;
    askConfirm(msg, submitter || form.querySelector("button[type=submit]"), function () {
      form.__confirmed = true;
      if (submitter) form.requestSubmit(submitter); else form.requestSubmit();
    });
  }, true);

  // --- Keyboard shortcuts: "/" focuses the page's search, "n" opens New invite
  // (from any page, for admins). Not while typing or with a dialog open.
  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (document.querySelector("dialog[open]")) return;
    if (e.key === "/") {
      var s = document.querySelector("[data-shortcut=search]") || document.querySelector("input[type=search]");
      if (s) { e.preventDefault(); s.focus(); if (s.select) s.select(); }
    } else if (e.key === "n") {
      var b = document.querySelector("[data-shortcut=new]");
      if (b) { e.preventDefault(); b.click(); }
      else if (document.body.getAttribute("data-can-write") === "true") { e.preventDefault(); location.href = "/agents/invites?new=invite"; }
    }
  });

  // --- Sortable tables: <table data-sortable id> with <th><button data-sort>.
  // Sorts the rows shown (a page of the list) by that column, ascending then
  // descending; a cell's <time datetime> sorts by time. The choice is kept
  // for the tab (sessionStorage) and applied again after a live refresh.
  function cellKey(row, i) {
    var td = row.children[i];
    if (!td) return "";
    var tm = td.querySelector("time[datetime]");
    if (tm) return tm.getAttribute("datetime");
    return (td.getAttribute("data-sort-value") || td.textContent || "").replace(/\s+/g, " ").trim().toLowerCase();
  }
  function sortTable(table, col, dir) {
    var body = table.tBodies[0];
    if (!body) return;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a, col), y = cellKey(b, col);
      return (x < y ? -1 : x > y ? 1 : 0) * (dir === "descending" ? -1 : 1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll("thead th").forEach(function (th, i) {
      if (th.hasAttribute("aria-sort")) th.setAttribute("aria-sort", i === col ? dir : "none");
    });
  }
  function applySavedSort(root) {
    var tables = [];
    if (root.matches && root.matches("table[data-sortable]")) tables.push(root);
    if (root.querySelectorAll) root.querySelectorAll("table[data-sortable]").forEach(function (t) { tables.push(t); });
    tables.forEach(function (table) {
      var saved = null;
      try { saved = JSON.parse(sessionStorage.getItem("sort:" + table.id) || "null"); } catch (err) { saved = null; }
      if (saved) sortTable(table, saved.col, saved.dir);
    });
  }
  document.addEventListener("click", function (e) {
    var b = e.target.closest ? e.target.closest("table[data-sortable] th button[data-sort]") : null;
    if (!b) return;
    var th = b.closest("th"), table = b.closest("table");
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var dir = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    sortTable(table, col, dir);
    try { sessionStorage.setItem("sort:" + table.id, JSON.stringify({ col: col, dir: dir })); } catch (err) { /* this view only */ }
  });

  // --- Selects that submit their form on change: <select data-autosubmit> --------
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-autosubmit]") && e.target.form) e.target.form.requestSubmit();
  });

  // --- Relative times: <time datetime="RFC 3339" data-relative> ------------------
  function relative(date) {
    var s = Math.round((Date.now() - date.getTime()) / 1000);
    var future = s < 0;
    s = Math.abs(s);
    if (s < 45) return "just now";
    var v;
    if (s < 3600) v = Math.round(s / 60) + " min";
    else if (s < 172800) v = Math.round(s / 3600) + " h";
    else v = Math.round(s / 86400) + " days";
    return future ? "in " + v : v + " ago";
  }
  function refreshTimes(root) {
    (root || document).querySelectorAll("time[data-relative]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.textContent = relative(d);
      el.title = d.toLocaleString();
    });
  }

  // --- Toasts: HX-Trigger {"showToast":{"message":"…","level":"success|error|info"}}
  document.addEventListener("showToast", function (e) {
    var box = document.getElementById("toasts");
    if (!box || !e.detail) return;
    // Whole class names, so Tailwind keeps them in the built CSS.
    var classes = { success: "toast toast-success", error: "toast toast-error", info: "toast toast-info" };
    var el = document.createElement("div");
    el.className = classes[e.detail.level] || classes.info;
    el.textContent = e.detail.message || "";
    box.appendChild(el);
    // Shown again on each toast, so it sits above a modal dialog opened since.
    if (box.showPopover) {
      try { if (box.matches(":popover-open")) box.hidePopover(); box.showPopover(); } catch (err) { /* not supported */ }
    }
    setTimeout(function () {
      el.remove();
      if (!box.children.length && box.hidePopover) { try { box.hidePopover(); } catch (err) { /* closed */ } }
    }, 4000);
  });

  // --- After htmx swaps: open self-opening dialogs, refresh times ----------------
  document.addEventListener("htmx:load", function (e) {
    refreshTimes(e.target);
    applySavedSort(e.target);
    var root = e.target;
    var dlgs = [];
    if (root.matches && root.matches("dialog[data-dialog-autoopen]")) dlgs.push(root);
    if (root.querySelectorAll) root.querySelectorAll("dialog[data-dialog-autoopen]").forEach(function (d) { dlgs.push(d); });
    dlgs.forEach(function (d) { openDialog(d, document.activeElement); });
  });
  // Content swapped into an existing, closed <dialog data-dialog-autoopen>.
  document.addEventListener("htmx:afterSwap", function (e) {
    var d = e.target.closest && e.target.closest("dialog[data-dialog-autoopen]:not([open])");
    if (d) openDialog(d, document.activeElement);
  });

  // --- Live updates: body[data-live] is "open" while the event stream is
  // connected and "reconnecting" while the SSE extension retries.
  document.addEventListener("htmx:sseOpen", function () { document.body.setAttribute("data-live", "open"); });
  document.addEventListener("htmx:sseError", function () { document.body.setAttribute("data-live", "reconnecting"); });

  document.addEventListener("DOMContentLoaded", function () {
    setTheme(storedTheme());
    refreshTimes(document);
    applySavedSort(document);
    setInterval(function () { refreshTimes(document); }, 30000);
  });
})();
