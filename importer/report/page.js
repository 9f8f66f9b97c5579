// report.html's table of rows to fix: filters, search, and rows drawn only where the reader looks, so that
// 50,000 rows stay quick. Inlined into the page; it reads the JSON block the page carries, nothing else.
(function () {
  "use strict";
  var source = document.getElementById("mk-data");
  if (!source || !document.getElementById("rows-scroller")) return;  // no row needs attention: no table
  var data = JSON.parse(source.textContent);
  // A row: [number, status, reasons ([column, problem, is an error]...), message]; its cells are
  // values[column][the row's place], one array per column.
  var rows = data.rows, columns = data.columns, problems = data.problems, statuses = data.statuses;
  var values = data.values;
  var ROW_H = 46, OVERSCAN = 12;
  var scroller = document.getElementById("rows-scroller");
  var body = document.getElementById("rows-body");
  var shownCount = document.getElementById("shown-count");
  var statusSel = document.getElementById("f-status");
  var columnSel = document.getElementById("f-column");
  var problemSel = document.getElementById("f-problem");
  var searchBox = document.getElementById("f-search");
  var width = columns.length + 3;
  var shown = [];
  var haystack = null;  // lower-cased text of each row, built on the first search

  function option(select, value, text) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text; select.appendChild(o);
  }
  // Only the choices that some row has, with how many rows each.
  (function fillChoices() {
    var byStatus = {}, byColumn = {}, byProblem = {};
    rows.forEach(function (r) {
      byStatus[r[1]] = (byStatus[r[1]] || 0) + 1;
      var seenC = {}, seenP = {};
      r[2].forEach(function (why) {
        if (!seenC[why[0]]) { seenC[why[0]] = 1; byColumn[why[0]] = (byColumn[why[0]] || 0) + 1; }
        if (!seenP[why[1]]) { seenP[why[1]] = 1; byProblem[why[1]] = (byProblem[why[1]] || 0) + 1; }
      });
    });
    statuses.forEach(function (s, i) { if (byStatus[i]) option(statusSel, String(i), s + " (" + byStatus[i] + ")"); });
    Object.keys(byColumn).map(Number).sort(function (a, b) { return a - b; }).forEach(function (c) {
      option(columnSel, String(c), (c < 0 ? "(the row as a whole)" : columns[c]) + " (" + byColumn[c] + ")");
    });
    Object.keys(byProblem).map(Number).sort(function (a, b) { return byProblem[b] - byProblem[a]; })
      .forEach(function (p) { option(problemSel, String(p), problems[p].label + " (" + byProblem[p] + ")"); });
  })();

  function textOf(r, i) {
    var parts = [String(r[0]), statuses[r[1]], r[3]];
    for (var c = 0; c < columns.length; c++) parts.push(values[c][i]);
    r[2].forEach(function (why) { parts.push(problems[why[1]].label, problems[why[1]].meaning); });
    return parts.join("\u0001").toLowerCase();
  }

  function apply() {
    var s = statusSel.value, c = columnSel.value, p = problemSel.value;
    var q = searchBox.value.trim().toLowerCase();
    if (q && haystack === null) haystack = rows.map(textOf);
    var si = s === "" ? -1 : Number(s), ci = c === "" ? null : Number(c), pi = p === "" ? -1 : Number(p);
    shown = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (si >= 0 && r[1] !== si) continue;
      if (ci !== null || pi >= 0) {
        var hit = false;
        for (var k = 0; k < r[2].length; k++) {
          var why = r[2][k];
          if ((ci === null || why[0] === ci) && (pi < 0 || why[1] === pi)) { hit = true; break; }
        }
        if (!hit) continue;
      }
      if (q && haystack[i].indexOf(q) < 0) continue;
      shown.push(i);
    }
    shownCount.textContent = shown.length.toLocaleString("en-US") + " of " + rows.length.toLocaleString("en-US") +
      " rows";
    scroller.scrollTop = 0;
    render();
  }

  function cell(tr, cls, value, reasons) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    var v = document.createElement("div");
    v.className = "v"; v.textContent = value; td.appendChild(v);
    var title = value;
    if (reasons && reasons.length) {
      td.className += " has-reason" + (reasons.every(function (w) { return !w[2]; }) ? " warning" : "");
      var why = document.createElement("div");
      why.className = "why";
      why.textContent = reasons.map(function (w) { return problems[w[1]].meaning; }).join("; ");
      td.appendChild(why);
      title = (value ? value + "\n" : "") + reasons.map(function (w) {
        return problems[w[1]].meaning + "\nTo fix: " + problems[w[1]].fix;
      }).join("\n");
    }
    td.title = title;
    tr.appendChild(td);
  }

  function rowElement(i) {
    var r = rows[i];
    var tr = document.createElement("tr");
    tr.className = "r";
    tr.setAttribute("data-row", r[0]);
    tr.setAttribute("data-status", statuses[r[1]]);
    var byColumn = {};
    r[2].forEach(function (why) { (byColumn[why[0]] = byColumn[why[0]] || []).push(why); });
    cell(tr, "num", String(r[0]));
    var td = document.createElement("td");
    var badge = document.createElement("span");
    badge.className = "status " + statuses[r[1]]; badge.textContent = statuses[r[1]];
    td.appendChild(badge);
    if (r[4] >= data.everyNight) {
      // Fixed in myKaarma, back the next night: the DMS sends it again, so that is where it must be fixed.
      var often = document.createElement("span");
      often.className = "seen-often";
      often.textContent = "seen " + r[4] + " nights: fix it in the DMS";
      td.title = "Reported " + r[4] + " nights running: it comes from the DMS every night; fix it there.";
      td.appendChild(often);
      tr.setAttribute("data-seen", r[4]);
    }
    tr.appendChild(td);
    var whole = byColumn[-1] || [];
    var msg = r[3] ? [r[3]] : [];
    cell(tr, "whole", whole.map(function (w) { return problems[w[1]].label; }).concat(msg).join(": "), whole);
    for (var c = 0; c < columns.length; c++) cell(tr, "", values[c][i], byColumn[c]);
    return tr;
  }

  function spacer(height) {
    var tr = document.createElement("tr");
    var td = document.createElement("td");
    td.className = "spacer"; td.colSpan = width; td.style.height = height + "px";
    tr.appendChild(td);
    return tr;
  }

  function draw(first, last, printing) {
    var frag = document.createDocumentFragment();
    frag.appendChild(spacer(first * ROW_H));
    for (var i = first; i < last; i++) frag.appendChild(rowElement(shown[i]));
    frag.appendChild(spacer(printing ? 0 : (shown.length - last) * ROW_H));
    body.replaceChildren(frag);
  }

  function render() {
    var first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H) - OVERSCAN);
    var visible = Math.ceil((scroller.clientHeight || 600) / ROW_H) + 2 * OVERSCAN;
    draw(first, Math.min(shown.length, first + visible));
  }

  var pending = false;
  scroller.addEventListener("scroll", function () {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; render(); });
  });
  [statusSel, columnSel, problemSel].forEach(function (el) { el.addEventListener("change", apply); });
  var typing = null;
  searchBox.addEventListener("input", function () { clearTimeout(typing); typing = setTimeout(apply, 120); });

  // A click on a bar of "problems by column" filters the table to it.
  Array.prototype.forEach.call(document.querySelectorAll("[data-filter-problem]"), function (el) {
    el.addEventListener("click", function () {
      var wanted = el.getAttribute("data-filter-problem"), column = el.getAttribute("data-filter-column");
      statusSel.value = ""; searchBox.value = "";
      columnSel.value = column !== null && column !== "" ? column : "";
      problemSel.value = wanted;
      apply();
      scroller.scrollIntoView({ behavior: "smooth", block: "start" });
    });
  });

  // Printed, the table holds every filtered row (up to a cap), not the window on screen.
  var printNote = document.getElementById("print-note");
  window.addEventListener("beforeprint", function () {
    var last = Math.min(shown.length, data.printCap);
    draw(0, last, true);
    printNote.textContent = last < shown.length ? "Printed: the first " + last + " of " + shown.length +
      " rows; errors.csv and errors.xlsx hold them all." : "";
  });
  window.addEventListener("afterprint", render);

  apply();
})();
