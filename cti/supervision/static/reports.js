// Call reports: asks /api/reports/calls for the form's range and grouping, draws the rows and the staffing table,
// and keeps the CSV link pointing at the same report.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("reports-config").textContent);
  const words = config.messages;
  const COLUMNS = ["offered", "answered", "abandoned", "voicemail", "closed", "other", "service_level_pct",
                   "abandon_rate_pct", "asa_s", "aht_s"];
  const form = document.getElementById("report-form");
  const $ = (id) => document.getElementById(id);
  const t = (key, values) => {
    let text = words[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.replace("{" + name + "}", value);
    return text;
  };
  const shown = (value) => (value === null || value === undefined ? "–" : String(value));

  function cell(tag, text, className) {
    const node = document.createElement(tag);
    node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function query(extra) {
    const params = new URLSearchParams(new FormData(form));
    for (const [name, value] of Object.entries(extra || {})) params.set(name, value);
    return "/api/reports/calls?" + params.toString();
  }

  function keyLabel(group, key) {
    if (group === "queue" && !key) return t("reports.no_queue");
    return key || "–";
  }

  function line(key, row, testid) {
    const tr = document.createElement("tr");
    tr.dataset.testid = testid;
    const head = cell("th", key);
    head.scope = "row";
    tr.append(head, ...COLUMNS.map((column) => {
      const td = cell("td", shown(row[column]), "num");
      td.dataset.column = column;
      return td;
    }));
    return tr;
  }

  function drawCalls(report) {
    $("report-head").replaceChildren(cell("th", t("reports.group." + report.group)),
      ...COLUMNS.map((column) => cell("th", t("reports.col." + column), "num")));
    $("report-rows").replaceChildren(...report.rows.map((row) =>
      line(keyLabel(report.group, row.key), row, "report-row")));
    $("report-total").replaceChildren(line(t("reports.total"), report.total, "report-total"));
    $("report-none").hidden = report.rows.length > 0;
  }

  function drawStaffing(staffing) {
    $("staffing-intro").textContent = t("reports.staffing.intro", {
      days: staffing.days, level: staffing.service_level_pct, within: staffing.answer_within_s });
    $("staffing-rows").replaceChildren(...staffing.hours.map((hour) => {
      const tr = document.createElement("tr");
      tr.dataset.testid = "staffing-row";
      tr.append(cell("th", String(hour.hour).padStart(2, "0") + ":00"),
        ...["calls_per_hour", "aht_s", "agents", "scheduled_agents", "expected_service_level_pct"].map(
          (name) => cell("td", shown(hour[name]), "num")));
      return tr;
    }));
    $("staffing-none").hidden = staffing.hours.length > 0;
  }

  async function show() {
    $("report-csv").href = query({ format: "csv" });
    try {
      const report = await window.cti.api("GET", query());
      $("report-error").hidden = true;
      drawCalls(report);
      drawStaffing(report.staffing);
    } catch (error) {
      $("report-error").textContent = t("reports.error", { message: error.message });
      $("report-error").hidden = false;
    }
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); show(); });
  form.addEventListener("change", () => { $("report-csv").href = query({ format: "csv" }); });
  show();
})();
