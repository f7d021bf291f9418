// Shared by the opening hours, call flows and simulator pages: the page's JSON config, wall-clock times in a
// service's time zone, and the API's refusal reasons ("weekly.monday[1]: ...") shown next to their field.
"use strict";

window.ctiIvr = (function () {
  function config(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : {};
  }

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? values[name] : whole));
  }

  // Offset (ms) of `zone` at `date`: the zone's wall clock read as if it were UTC, minus the real instant.
  function offsetMs(zone, date) {
    const parts = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(date);
    const v = Object.fromEntries(parts.map((part) => [part.type, part.value]));
    const asUtc = Date.UTC(+v.year, +v.month - 1, +v.day, +v.hour, +v.minute, +v.second);
    return asUtc - Math.floor(date.getTime() / 1000) * 1000;
  }

  // "2026-11-23T18:00" on the wall clock of `zone` -> ISO 8601 instant in UTC ("" when the field is empty).
  function wallToInstant(wall, zone) {
    if (!wall) return "";
    const guess = Date.parse(wall + ":00Z");
    if (Number.isNaN(guess)) return wall; // the API says what is wrong with it
    let instant = guess - offsetMs(zone, new Date(guess));
    const second = guess - offsetMs(zone, new Date(instant)); // across a DST change the first guess is off
    if (second !== instant) instant = second;
    return new Date(instant).toISOString();
  }

  // An instant -> "YYYY-MM-DDTHH:MM" on the wall clock of `zone` (for a datetime-local field).
  function instantToWall(instant, zone) {
    const date = new Date(instant);
    return new Date(date.getTime() + offsetMs(zone, date)).toISOString().slice(0, 16);
  }

  // An ISO instant the server wrote in the service's zone, shown as "2026-11-23 18:00".
  function shown(iso) {
    return iso ? iso.slice(0, 16).replace("T", " ") : "";
  }

  function errorPath(reason) {
    const cut = reason.indexOf(": ");
    return cut > 0 ? reason.slice(0, cut) : "";
  }

  // The element whose data-path is the longest one that `path` equals or continues (".x" or "[n]").
  function fieldFor(scope, path) {
    let best = null;
    let bestLength = -1;
    if (!path) return null;
    for (const element of scope.querySelectorAll("[data-path]")) {
      for (const candidate of element.dataset.path.split(" ")) {
        const continues = path === candidate || path.startsWith(candidate + ".") || path.startsWith(candidate + "[");
        if (candidate && continues && candidate.length > bestLength) {
          best = element;
          bestLength = candidate.length;
        }
      }
    }
    return best;
  }

  function holderFor(element) {
    if (element.tagName === "TR") return element.cells[0];
    if (["INPUT", "SELECT", "TEXTAREA"].includes(element.tagName)) {
      return element.closest(".field") || element.parentElement;
    }
    return element;
  }

  function clearErrors(scope, summary) {
    scope.querySelectorAll(".field-error").forEach((node) => node.remove());
    scope.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
    if (summary) {
      summary.replaceChildren();
      summary.hidden = true;
    }
  }

  // Each reason next to its field; those no field holds go to `summary`.
  function showErrors(scope, summary, reasons) {
    clearErrors(scope, summary);
    for (const reason of reasons) {
      const element = fieldFor(scope, errorPath(reason));
      if (!element) {
        const item = document.createElement("li");
        item.textContent = reason;
        summary.append(item);
        summary.hidden = false;
        continue;
      }
      const note = document.createElement("span");
      note.className = "field-error";
      note.dataset.testid = "field-error";
      note.dataset.for = errorPath(reason);
      note.textContent = reason;
      holderFor(element).append(note);
      if (["INPUT", "SELECT", "TEXTAREA"].includes(element.tagName)) element.setAttribute("aria-invalid", "true");
    }
  }

  // The reasons of a refused API call: its `errors`, else its message.
  function reasonsOf(error) {
    const data = error.data || {};
    if (Array.isArray(data.errors) && data.errors.length) return data.errors;
    return [data.message || error.message || String(error)];
  }

  // Number pickers show the chosen number at once.
  document.querySelectorAll("select.auto-submit").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
  });

  return { config, fill, wallToInstant, instantToWall, shown, showErrors, clearErrors, reasonsOf, errorPath };
})();
