// The timeline table: filters the embedded rows by text, kind, outcome and entity, renders the
// first matches, and writes the match count into #events-match[data-count] for tests and readers.
// The initial filter can come from the URL: #q=alice&kind=user_deprovisioned&outcome=blocked.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var rows = data.rows;
  var PAGE = 300;
  var shown = PAGE;
  var q = document.getElementById("q");
  var kind = document.getElementById("kind");
  var outcome = document.getElementById("outcome");
  var entity = document.getElementById("entity");
  var body = document.querySelector("#events-table tbody");
  var count = document.getElementById("events-match");
  var more = document.getElementById("more");
  var haystacks = rows.map(function (r) {
    return [r[1], r[2] || "", r[5], r[7], r[4]].join(" ").toLowerCase();
  });

  function cell(text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    return td;
  }

  function render() {
    var needle = q.value.trim().toLowerCase();
    var k = kind.value, o = outcome.value, e = entity.value;
    var matches = [];
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      if (k && r[4] !== k) continue;
      if (o && r[6] !== o) continue;
      if (e && r[0] !== e) continue;
      if (needle && haystacks[i].indexOf(needle) < 0) continue;
      matches.push(r);
    }
    var frag = document.createDocumentFragment();
    matches.slice(0, shown).forEach(function (r) {
      var tr = document.createElement("tr");
      tr.dataset.kind = r[4];
      tr.appendChild(cell(r[3].slice(0, 16).replace("T", " ")));
      var who = document.createElement("td");
      var tag = document.createElement("span");
      tag.className = "ent";
      tag.textContent = r[0];
      var pick = document.createElement("a");
      pick.className = "pick";
      pick.textContent = r[2] || r[1];
      pick.title = "show only " + r[1];
      pick.onclick = function () { q.value = r[1]; shown = PAGE; render(); };
      who.appendChild(tag);
      who.appendChild(pick);
      tr.appendChild(who);
      tr.appendChild(cell(r[4].replace(/_/g, " ")));
      tr.appendChild(cell(r[6], "o-" + r[6]));
      tr.appendChild(cell(r[7]));
      tr.appendChild(cell(r[5]));
      frag.appendChild(tr);
    });
    body.replaceChildren(frag);
    count.dataset.count = String(matches.length);
    count.dataset.shown = String(Math.min(shown, matches.length));
    count.textContent = matches.length.toLocaleString("en") + " of " + rows.length.toLocaleString("en") +
      " entries" + (matches.length > shown ? " (first " + shown + " shown)" : "");
    more.hidden = matches.length <= shown;
  }

  function fromHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    if (!params.has("q") && !params.has("kind") && !params.has("outcome") && !params.has("entity")) return;
    q.value = params.get("q") || "";
    kind.value = params.get("kind") || "";
    outcome.value = params.get("outcome") || "";
    entity.value = params.get("entity") || "";
  }

  [q, kind, outcome, entity].forEach(function (el) {
    el.addEventListener("input", function () { shown = PAGE; render(); });
  });
  more.addEventListener("click", function () { shown += PAGE * 3; render(); });
  window.addEventListener("hashchange", function () { fromHash(); render(); });
  fromHash();
  render();
  document.body.dataset.ready = "1";
})();
