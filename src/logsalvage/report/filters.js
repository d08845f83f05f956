/* The report's one script: search and filters over the analyst's part. Allowed by its hash in the
   page's Content-Security-Policy and nothing else; it reads text (textContent), shows and hides
   elements (the hidden property) and writes one count (textContent): no HTML is ever built from a
   string, nothing is evaluated, nothing is loaded. Without it the page is whole: the filter bar
   stays hidden and every section is shown. */
(function () {
  "use strict";
  var bar = document.getElementById("filters");
  if (!bar) {
    return;
  }
  function all(selector) {
    return Array.prototype.slice.call(document.querySelectorAll(selector));
  }
  var findings = all("#findings [data-severity]");
  var rows = all("#milestones tbody tr, #addresses tbody tr, #analysis table.evidence tbody tr");
  var severity = document.getElementById("filter-severity");
  var host = document.getElementById("filter-host");
  var kind = document.getElementById("filter-kind");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");
  var clear = document.getElementById("filter-clear");

  function has(list, value) {
    return (" " + (list || "") + " ").indexOf(" " + value + " ") >= 0;
  }
  function contains(element, query) {
    return !query || element.textContent.toLowerCase().indexOf(query) >= 0;
  }
  function apply() {
    var query = text.value.trim().toLowerCase();
    var shown = 0;
    findings.forEach(function (element) {
      var keep = (!severity.value || element.getAttribute("data-severity") === severity.value) &&
        (!host.value || has(element.getAttribute("data-hosts"), host.value)) &&
        (!kind.value || element.getAttribute("data-kind") === kind.value) &&
        contains(element, query);
      element.hidden = !keep;
      if (keep) {
        shown += 1;
      }
    });
    var lines = 0;
    rows.forEach(function (row) {
      var keep = (!host.value || !row.hasAttribute("data-hosts") || has(row.getAttribute("data-hosts"), host.value)) &&
        contains(row, query);
      row.hidden = !keep;
      if (keep) {
        lines += 1;
      }
    });
    count.textContent = shown + " of " + findings.length + " findings, " + lines + " of " + rows.length +
      " rows shown";
  }
  [severity, host, kind].forEach(function (select) {
    select.addEventListener("change", apply);
  });
  text.addEventListener("input", apply);
  clear.addEventListener("click", function () {
    severity.value = "";
    host.value = "";
    kind.value = "";
    text.value = "";
    apply();
  });
  bar.hidden = false;
  apply();
}());
