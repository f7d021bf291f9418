// The opening hours page: builds the hours document from the form, saves it (PUT .../hours), sets or ends the
// manual override (PUT/DELETE .../override), and shows the API's reasons next to the fields that hold them.
"use strict";

(function () {
  const ivr = window.ctiIvr;
  const settings = ivr.config("hours-config");
  const service = settings.service;
  const text = settings.messages;
  const base = "/api/ivr/services/" + encodeURIComponent(service.number);
  const hoursForm = document.getElementById("hours-form");
  const overrideForm = document.getElementById("override-form");
  const hoursErrors = hoursForm.querySelector("[data-testid=hours-errors]");
  const overrideErrors = overrideForm.querySelector("[data-testid=override-errors]");

  function showStatus(status) {
    const node = document.getElementById("status");
    node.textContent = text["hours.status." + status.status] || status.status;
    node.dataset.status = status.status;
    document.getElementById("status-reason").textContent = status.reason || "";
    const next = document.getElementById("next-change");
    if (status.configured === false) next.textContent = "";
    else if (status.next_change) next.textContent = ivr.fill(text["hours.next_change"], { when: ivr.shown(status.next_change) });
    else next.textContent = text["hours.no_change"];
  }

  // --- the hours document ------------------------------------------------------------------------------

  function ranges(values) {
    return values.split(/[\s,;]+/).filter(Boolean);
  }

  function weekly() {
    const days = {};
    for (const row of hoursForm.querySelectorAll("tr[data-day]")) {
      const day = row.dataset.day;
      const kept = [];
      for (const input of row.querySelectorAll(".range-input")) {
        const value = input.value.trim();
        input.dataset.path = value ? `weekly.${day}[${kept.length}]` : "";
        if (value) kept.push(value);
      }
      if (kept.length) days[day] = kept;
    }
    return days;
  }

  function holidays() {
    const country = hoursForm.elements.country.value;
    if (!country) return undefined;
    return { country, subdivision: hoursForm.elements.subdivision.value.trim() || null,
             language: hoursForm.elements.holiday_language.value.trim() || null };
  }

  // A row's date (one day) or period, its label and hours; its inputs learn the paths the API will name.
  function datedEntry(row, index) {
    const field = (name) => row.querySelector(`[name=${name}]`);
    const [from, to, label, hours] = ["from", "to", "label", "hours"].map((name) => field(name).value.trim());
    if (!from && !to && !label && !hours) return null;
    const path = `dated[${index}]`;
    row.dataset.path = path;
    field("from").dataset.path = `${path}.date ${path}.from`;
    field("to").dataset.path = `${path}.to`;
    field("label").dataset.path = `${path}.label`;
    field("hours").dataset.path = `${path}.hours`;
    const entry = !to || to === from ? { date: from || null } : { from: from || null, to };
    if (label) entry.label = label;
    if (hours) entry.hours = ranges(hours);
    return entry;
  }

  function dated() {
    const entries = [];
    for (const row of hoursForm.querySelectorAll(".dated-row")) {
      row.dataset.path = "";
      const entry = datedEntry(row, entries.length);
      if (entry) entries.push(entry);
    }
    return entries;
  }

  function hoursDocument() {
    const document_ = { timezone: hoursForm.elements.timezone.value.trim(), weekly: weekly() };
    const holidayBlock = holidays();
    if (holidayBlock) document_.holidays = holidayBlock;
    const entries = dated();
    if (entries.length) document_.dated = entries;
    return document_;
  }

  async function saveHours(event) {
    event.preventDefault();
    try {
      const status = await window.cti.api("PUT", base + "/hours", hoursDocument());
      ivr.clearErrors(hoursForm, hoursErrors);
      showStatus(status);
      overrideForm.querySelector("fieldset").disabled = false;
      window.cti.toast(text["sup.saved"]);
    } catch (error) {
      ivr.showErrors(hoursForm, hoursErrors, ivr.reasonsOf(error));
      window.cti.toast(text["hours.refused"], "error");
    }
  }

  // --- the override ---------------------------------------------------------------------------------------

  async function saveOverride(event) {
    event.preventDefault();
    const state = overrideForm.elements.state.value;
    const zone = hoursForm.elements.timezone.value.trim() || service.timezone;
    try {
      const status = state
        ? await window.cti.api("PUT", base + "/override", {
            state, until: ivr.wallToInstant(overrideForm.elements.until.value, zone),
            reason: overrideForm.elements.reason.value.trim() })
        : await window.cti.api("DELETE", base + "/override");
      ivr.clearErrors(overrideForm, overrideErrors);
      showStatus(status);
      window.cti.toast(state ? text["sup.saved"] : text["hours.override.ended"]);
    } catch (error) {
      ivr.showErrors(overrideForm, overrideErrors, ivr.reasonsOf(error));
      window.cti.toast(ivr.fill(text["sup.error"], { message: ivr.reasonsOf(error).join("; ") }), "error");
    }
  }

  // --- editing the grid and the dated rows -----------------------------------------------------------------

  function cloneTemplate(id) {
    return document.getElementById(id).content.firstElementChild.cloneNode(true);
  }

  hoursForm.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("add-range")) {
      const added = cloneTemplate("range-template");
      button.parentElement.querySelector(".ranges").append(added);
      added.querySelector("input").focus();
    } else if (button.classList.contains("remove-range")) {
      button.closest(".range").remove();
    } else if (button.classList.contains("remove-row")) {
      button.closest("tr").remove();
    } else if (button.id === "add-dated") {
      const row = cloneTemplate("dated-template");
      document.getElementById("dated-rows").append(row);
      row.querySelector("input").focus();
    }
  });

  function listSubdivisions() {
    const list = document.getElementById("subdivisions");
    const codes = settings.countries[hoursForm.elements.country.value] || [];
    list.replaceChildren(...codes.map((code) => Object.assign(document.createElement("option"), { value: code })));
  }

  hoursForm.elements.country.addEventListener("change", listSubdivisions);
  listSubdivisions();
  hoursForm.addEventListener("submit", saveHours);
  overrideForm.addEventListener("submit", saveOverride);
})();
