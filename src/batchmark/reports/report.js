// The HTML report's item view (batchmark.reports._html): search, filters, pages.
// Data is put into the page with textContent only, never as markup.
(function () {
  "use strict";
  var meta = JSON.parse(document.getElementById("bm-meta").textContent);
  var PAGE = 50, items = [], byId = new Map(), changes = new Map(), T = [];
  // A text is a string (numbered in order of reading) or the number of an earlier one.
  function text(v) {
    if (typeof v === "number") return T[v];
    if (v !== "") T.push(v);
    return v;
  }
  document.querySelectorAll("script.bm-data").forEach(function (block) {
    JSON.parse(block.textContent).forEach(function (rec) {
      var id = String(rec[0]), item = byId.get(id);
      if (!item) { item = {id: id, parts: []}; byId.set(id, item); items.push(item); }
      var prompts = rec[1].map(function (parts) { return parts.map(text).join("\n\n"); });
      var cells = rec[2].map(function (c) {
        var cell = {cell: c[0], id: c[1], prompt: c[2], response: text(c[3])};
        cell.scores = c[4].map(function (sc) {
          return {scorer: sc[0], value: sc[1], state: sc[2], why: sc.length > 3 ? text(sc[3]) : ""};
        });
        cell.epoch = c.length > 5 ? c[5] : 0;
        cell.status = c.length > 6 ? c[6] : "succeeded";
        cell.thinking = c.length > 7 ? text(c[7]) : "";
        return cell;
      });
      item.parts.push({prompts: prompts, cells: cells});
    });
  });
  meta.changes.forEach(function (c) {
    var list = changes.get(String(c[0])) || [];
    list.push({cell: c[1], scorer: c[2], change: c[3], base: c[4]});
    changes.set(String(c[0]), list);
  });
  var $ = function (id) { return document.getElementById(id); };
  var q = $("bm-q"), fScorer = $("bm-scorer"), fOutcome = $("bm-outcome"), fChange = $("bm-change");
  var list = $("bm-list"), count = $("bm-count"), prev = $("bm-prev"), next = $("bm-next");
  var state = {page: 0, only: null}, shown = [];
  var STATE = {1: "pass", 0: "fail", 2: "invalid"};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function label(cell) { return meta.cells[cell.cell]; }
  function hay(part, cell) {
    if (cell.hay === undefined) {
      var s = [cell.id, part.prompts[cell.prompt], cell.response, cell.thinking];
      cell.scores.forEach(function (sc) { s.push(sc.why); });
      cell.hay = s.join("\n").toLowerCase();
    }
    return cell.hay;
  }
  function cellMatches(item, part, cell, f) {
    if (f.q && item.idLower.indexOf(f.q) < 0 && hay(part, cell).indexOf(f.q) < 0) return false;
    var scores = cell.scores.filter(function (sc) {
      return !f.scorer || meta.scorers[sc.scorer] === f.scorer;
    });
    if ((f.scorer || f.outcome) && !scores.length) return false;
    if (f.outcome && !scores.some(function (sc) { return STATE[sc.state] === f.outcome; })) {
      return false;
    }
    if (f.change) {
      var mine = (changes.get(item.id) || []).filter(function (c) {
        return c.cell === label(cell) && (!f.scorer || c.scorer === f.scorer) &&
          (f.change === "changed" || c.change === f.change);
      });
      if (!mine.length) return false;
    }
    return true;
  }
  function filters() {
    return {q: q.value.trim().toLowerCase(), scorer: fScorer.value, outcome: fOutcome.value,
            change: fChange ? fChange.value : ""};
  }
  function apply() {
    var f = filters(), any = f.q || f.scorer || f.outcome || f.change;
    shown = [];
    items.forEach(function (item) {
      if (item.idLower === undefined) item.idLower = String(item.id).toLowerCase();
      if (state.only !== null) { if (item.id === state.only) shown.push({item: item, hits: null}); return; }
      if (!any) { shown.push({item: item, hits: null}); return; }
      var hits = new Set();
      item.parts.forEach(function (part) {
        part.cells.forEach(function (cell) { if (cellMatches(item, part, cell, f)) hits.add(cell); });
      });
      if (hits.size) shown.push({item: item, hits: hits});
    });
    state.page = Math.min(state.page, Math.max(0, Math.ceil(shown.length / PAGE) - 1));
    draw();
  }
  function scoreDiv(sc) {
    var div = el("div", STATE[sc.state] || "");
    div.appendChild(el("b", null, meta.scorers[sc.scorer]));
    div.appendChild(document.createTextNode(" " + (sc.state === 2 ? "invalid" :
      sc.value === null ? "–" : Number(sc.value).toFixed(2))));
    if (sc.why) { div.appendChild(el("br")); div.appendChild(el("small", null, sc.why)); }
    return div;
  }
  function drawItem(entry) {
    var item = entry.item, det = el("details", "item");
    det.dataset.row = item.id;
    var sum = el("summary"), counts = {}, n = 0;
    sum.appendChild(el("bdi", null, item.id));  // its bidi marks reorder nothing after it
    item.parts.forEach(function (part) {
      part.cells.forEach(function (cell) {
        n += 1;
        cell.scores.forEach(function (sc) {
          var name = meta.scorers[sc.scorer], c = counts[name] || (counts[name] = [0, 0]);
          c[1] += 1; if (sc.state === 1) c[0] += 1;
        });
      });
    });
    var badge = Object.keys(counts).map(function (k) {
      return k + " " + counts[k][0] + "/" + counts[k][1] + " pass";
    }).join(" · ");
    if (entry.hits) badge = entry.hits.size + " of " + n + " cells match · " + badge;
    sum.appendChild(el("span", "badge", badge));
    var told = new Map();  // one badge per change of a cell, its scorers together
    (changes.get(item.id) || []).forEach(function (c) {
      var key = [c.change, c.cell, c.base].join("\u0000"), seen = told.get(key);
      if (seen) { seen.push(c.scorer); return; }
      told.set(key, [c.scorer]);
    });
    told.forEach(function (scorers, key) {
      var k = key.split("\u0000");
      sum.appendChild(el("span", "badge " + (k[0] === "regressed" ? "down" : "up"),
        k[0] + ": " + k[1] + " (" + scorers.join(", ") + ") vs " + k[2]));
    });
    det.appendChild(sum);
    var table = el("table"), head = el("tr");
    ["cell", "prompt", "response", "scores"].forEach(function (h) { head.appendChild(el("th", null, h)); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    item.parts.forEach(function (part) {
      var seen = {};
      part.cells.forEach(function (cell) {
        var tr = el("tr", entry.hits && entry.hits.has(cell) ? "hit" : null), td = el("td");
        td.appendChild(el("bdi", null, label(cell)));
        if (cell.epoch) td.appendChild(document.createTextNode(" (epoch " + cell.epoch + ")"));
        td.appendChild(el("br"));
        td.appendChild(el("small", null, cell.id));
        if (cell.status !== "succeeded") { td.appendChild(el("br")); td.appendChild(el("small", "fail", cell.status)); }
        tr.appendChild(td);
        var tp = el("td");
        if (seen[cell.prompt]) tp.appendChild(el("small", "muted", "the prompt of " + seen[cell.prompt]));
        else { seen[cell.prompt] = label(cell); tp.appendChild(el("pre", null, part.prompts[cell.prompt])); }
        tr.appendChild(tp);
        var tr2 = el("td");
        if (cell.thinking) {
          var th = el("details", "thinking");
          th.appendChild(el("summary", null, "thinking"));
          th.appendChild(el("pre", null, cell.thinking));
          tr2.appendChild(th);
        }
        tr2.appendChild(el("pre", null, cell.response));
        tr.appendChild(tr2);
        var ts = el("td");
        cell.scores.forEach(function (sc) { ts.appendChild(scoreDiv(sc)); });
        tr.appendChild(ts);
        body.appendChild(tr);
      });
    });
    det.appendChild(table);
    return det;
  }
  function draw() {
    list.textContent = "";
    var start = state.page * PAGE, page = shown.slice(start, start + PAGE);
    page.forEach(function (entry) { list.appendChild(drawItem(entry)); });
    count.textContent = (shown.length ? (start + 1) + "–" + (start + page.length) : "0") +
      " of " + shown.length + " items" + (shown.length !== items.length ? " (" + items.length + " in all)" : "");
    prev.disabled = state.page === 0;
    next.disabled = start + PAGE >= shown.length;
  }
  function route() {
    var h = location.hash.replace(/^#/, ""), p = new URLSearchParams(h);
    if (p.has("item")) {
      state.only = p.get("item"); state.page = 0; apply();
      var det = list.querySelector("details.item");
      if (det) { det.open = true; det.id = "bm-open"; det.scrollIntoView(); }
      return;
    }
    // #q=...&scorer=...&outcome=...&change=...: a filtered view, set as a person would.
    var fields = {scorer: fScorer, outcome: fOutcome, change: fChange, q: q}, any = false;
    Object.keys(fields).forEach(function (k) {
      if (!p.has(k) || !fields[k]) return;
      fields[k].value = p.get(k);
      fields[k].dispatchEvent(new Event(k === "q" ? "input" : "change"));
      any = true;
    });
    if (any) $("bm-items").scrollIntoView();
  }
  var timer = null;
  q.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { state.only = null; state.page = 0; apply(); }, 150);
  });
  [fScorer, fOutcome, fChange].forEach(function (s) {
    if (s) s.addEventListener("change", function () { state.only = null; state.page = 0; apply(); });
  });
  $("bm-clear").addEventListener("click", function () {
    q.value = ""; fScorer.value = ""; fOutcome.value = ""; if (fChange) fChange.value = "";
    state.only = null; state.page = 0;
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    apply();
  });
  prev.addEventListener("click", function () { state.page -= 1; draw(); });
  next.addEventListener("click", function () { state.page += 1; draw(); });
  window.addEventListener("hashchange", route);
  apply();
  route();
})();
