// The dashboard's own script (the pages' CSP allows only files from here, no inline script).
(function () {
  // Period picker: typing a date means a custom period, whatever the select said.
  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.form || !input.form.classList.contains("period-picker")) return;
    var select = input.form.querySelector("select[name=period]");
    if (input.type === "date" && select) select.value = "custom";
  });

  // Copy buttons: <button data-copy="element-id">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var text = document.getElementById(button.getAttribute("data-copy")).textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
  });

  // Chart hover detail: each <g class="day"> carries its figures in data attributes.
  function show(day) {
    var chart = day.closest(".chart");
    var tip = chart.querySelector(".tip");
    if (!tip) return;
    chart.querySelectorAll(".day.on").forEach(function (g) { g.classList.remove("on"); });
    day.classList.add("on");
    tip.textContent = "";
    var head = document.createElement("strong");
    head.textContent = day.getAttribute("data-day") + ": " + day.getAttribute("data-total");
    tip.appendChild(head);
    (day.getAttribute("data-detail") || "").split("|").forEach(function (line) {
      if (!line) return;
      var row = document.createElement("div");
      row.textContent = line;
      tip.appendChild(row);
    });
    tip.hidden = false;
    var box = chart.getBoundingClientRect(), bar = day.getBoundingClientRect();
    var left = bar.left - box.left + bar.width / 2 - tip.offsetWidth / 2;
    tip.style.left = Math.max(4, Math.min(left, box.width - tip.offsetWidth - 4)) + "px";
    tip.style.top = Math.max(4, bar.top - box.top - tip.offsetHeight + 8) + "px";
  }
  function hide(chart) {
    var tip = chart.querySelector(".tip");
    if (tip) tip.hidden = true;
    chart.querySelectorAll(".day.on").forEach(function (g) { g.classList.remove("on"); });
  }
  document.addEventListener("mouseover", function (event) {
    var day = event.target.closest && event.target.closest(".chart .day");
    if (day) show(day);
  });
  document.addEventListener("mouseout", function (event) {
    var chart = event.target.closest && event.target.closest(".chart");
    if (chart && !(event.relatedTarget && chart.contains(event.relatedTarget) && event.relatedTarget.closest(".day"))) hide(chart);
  });
  document.addEventListener("click", function (event) {
    var day = event.target.closest && event.target.closest(".chart .day");
    if (day) show(day);  // a tap on a phone
  });

  // Tables sorted in the page (<table class="sortable">): click a header; numbers by data-sort.
  document.addEventListener("click", function (event) {
    var th = event.target.closest("table.sortable th");
    if (!th) return;
    var table = th.closest("table"), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var descending = th.getAttribute("aria-sort") !== "descending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > index; });
    function key(row) {
      var cell = row.cells[index];
      var value = cell.getAttribute("data-sort");
      return value !== null ? parseFloat(value) : cell.textContent.trim().toLowerCase();
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      var order = typeof x === "number" ? x - y : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
})();
