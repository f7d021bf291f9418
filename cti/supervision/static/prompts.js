// The voice prompts page: fills the list and completeness from GET /api/prompts, shows one prompt's versions
// (listen, activate/roll back, schedule, cancel), and sends the upload and placeholder-voice forms.
// Every text comes from the page's configuration (EN/FR); the DOM is built with textContent only.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("prompts-config").textContent);
  const M = config.messages;
  const $ = (id) => document.getElementById(id);
  let shown = null; // {name, language} whose versions are open
  let data = null;

  function t(key, values) {
    let text = M[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "testid") node.dataset.testid = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  const base = (language, name) => "/api/prompts/" + encodeURIComponent(language) + "/" + encodeURIComponent(name);
  const when = (iso) => new Date(iso).toLocaleString(config.language);
  const seconds = (value) => t("prompts.seconds", { seconds: Number(value || 0).toFixed(1) });
  const languageName = (code) => M["lang." + code] || code;

  function failed(error, box) {
    const text = t("sup.error", { message: error.message });
    if (box) { box.textContent = text; box.hidden = false; }
    cti.toast(text, "error");
  }

  // --- the list ---------------------------------------------------------------------------------------------

  async function load() {
    try {
      data = await cti.api("GET", "/api/prompts");
    } catch (error) { failed(error); return; }
    renderCompleteness(data.completeness);
    renderRows();
    if (shown) await showVersions(shown.name, shown.language);
  }

  function renderCompleteness(report) {
    const box = $("completeness");
    box.replaceChildren();
    for (const code of config.languages) {
      const counts = report.languages[code];
      box.append(el("p", { testid: "present-" + code,
        text: t("prompts.present", { language: languageName(code), present: counts.present, total: counts.total }) }));
    }
    if (report.complete) { box.append(el("p", { className: "good", testid: "complete", text: t("prompts.complete") })); return; }
    const list = el("ul", { className: "completeness-list" });
    for (const entry of report.missing) {
      const languages = entry.languages.map(languageName).join(", ");
      list.append(el("li", { testid: "missing-" + entry.name },
        t("prompts.missing_in", { name: entry.name, languages }) + (entry.used ? "" : " (" + t("prompts.unused") + ")")));
    }
    box.append(list);
  }

  function renderRows() {
    const filter = $("prompt-filter").value.trim().toLowerCase();
    const rows = data.prompts.filter((prompt) => !filter || prompt.name.includes(filter));
    $("prompt-rows").replaceChildren(...rows.map(promptRow));
  }

  function promptRow(prompt) {
    const name = el("td", { className: "prompt-name" }, el("strong", { text: prompt.name }));
    if (!prompt.catalog) name.append(el("small", { text: t("prompts.custom") }));
    const text = prompt.texts[config.language];
    if (text) name.append(el("small", { text }));
    const row = el("tr", { testid: "prompt-row", "data-name": prompt.name }, name);
    for (const code of config.languages) row.append(languageCell(prompt.name, code, prompt.languages[code]));
    row.append(el("td", { className: "prompt-used", testid: "used-" + prompt.name }, usedBy(prompt.used_by)));
    return row;
  }

  function languageCell(name, code, state) {
    const cell = el("td", { className: "prompt-cell", testid: "cell-" + name + "-" + code });
    if (state.present) {
      cell.append(el("span", { className: "version", testid: "active-" + name + "-" + code,
        text: state.version ? t("prompts.version", { version: state.version }) : "?" }), " ",
        el("span", { className: "muted", text: seconds(state.duration_s) }),
        el("audio", { controls: true, preload: "none", testid: "player-" + name + "-" + code,
          src: base(code, name) + "/audio?v=" + (state.version || 0) + "-" + (state.size_bytes || 0) }));
    } else {
      cell.append(el("span", { className: "missing", testid: "missing-" + name + "-" + code, text: t("prompts.missing") }));
    }
    for (const entry of state.scheduled) {
      cell.append(el("div", { className: "scheduled", text: t("prompts.scheduled_at", { version: entry.version, at: when(entry.at) }) }));
    }
    if (state.versions) {
      const button = el("button", { type: "button", className: "link-button", testid: "versions-" + name + "-" + code,
        text: t("prompts.show_versions") });
      button.addEventListener("click", () => showVersions(name, code));
      cell.append(el("div", {}, button));
    }
    return cell;
  }

  function usedBy(entries) {
    if (!entries.length) return el("span", { className: "muted", text: t("prompts.unused") });
    const list = el("ul");
    for (const entry of entries) {
      let text;
      if (entry.kind === "flow") {
        const service = entry.service + " (" + entry.service_name + ")";
        text = entry.default_flow ? t("prompts.where.default_flow", { service })
          : t("prompts.where.flow", { service, node: entry.node });
      } else text = t("prompts.where." + entry.where);
      list.append(el("li", { text }));
    }
    return list;
  }

  // --- one prompt's versions ----------------------------------------------------------------------------------

  async function showVersions(name, language) {
    shown = { name, language };
    let answer;
    try {
      answer = await cti.api("GET", base(language, name));
    } catch (error) { failed(error); return; }
    $("versions-title").textContent = t("prompts.versions_of", { name, language: languageName(language) });
    $("version-rows").replaceChildren(...answer.versions.map((version) => versionRow(answer, version)));
    $("versions").hidden = false;
  }

  function versionRow(prompt, version) {
    const row = el("tr", { testid: "version-" + version.version, className: version.active ? "active-version" : null });
    const state = version.active ? t("prompts.state.active")
      : version.activate_at ? t("prompts.state.scheduled", { at: when(version.activate_at) }) : "";
    row.append(
      el("td", { text: t("prompts.version", { version: version.version }) }),
      el("td", { text: t("prompts.source." + version.source) }),
      el("td", { text: version.original_filename }),
      el("td", { className: "num", text: seconds(version.duration_s) }),
      el("td", { className: "num", text: (version.size_bytes / 1024).toFixed(0) + " KiB" }),
      el("td", { text: version.created_by }),
      el("td", { text: version.created_at ? when(version.created_at) : "" }),
      el("td", { text: version.note }),
      el("td", { testid: "version-state", text: state }),
      el("td", {}, el("audio", { controls: true, preload: "none",
        src: base(prompt.language, prompt.name) + "/versions/" + version.version + "/audio" })),
      el("td", {}, versionActions(prompt, version)));
    return row;
  }

  function versionActions(prompt, version) {
    const box = el("div", { className: "version-actions" });
    if (version.active) return box;
    const older = prompt.active && version.version < prompt.active;
    const activate = el("button", { type: "button", testid: "activate-" + version.version,
      text: older ? t("prompts.rollback") : t("prompts.activate") });
    activate.addEventListener("click", () => change("POST", prompt, version, "/activate", undefined,
      t("prompts.activated", { name: prompt.name, language: prompt.language, version: version.version })));
    const at = el("input", { type: "datetime-local", "aria-label": t("prompts.schedule_at"), testid: "schedule-at-" + version.version });
    const schedule = el("button", { type: "button", testid: "schedule-" + version.version, text: t("prompts.schedule") });
    schedule.addEventListener("click", () => {
      if (!at.value) { at.focus(); return; }
      const instant = new Date(at.value).toISOString();
      change("PUT", prompt, version, "/schedule", { at: instant },
        t("prompts.scheduled", { name: prompt.name, language: prompt.language, version: version.version, at: when(instant) }));
    });
    box.append(activate, at, schedule);
    if (version.activate_at) {
      const cancel = el("button", { type: "button", className: "secondary", testid: "cancel-" + version.version,
        text: t("prompts.cancel_schedule") });
      cancel.addEventListener("click", () => change("DELETE", prompt, version, "/schedule", undefined,
        t("prompts.schedule_cancelled")));
      box.append(cancel);
    }
    return box;
  }

  async function change(method, prompt, version, suffix, body, done) {
    try {
      await cti.api(method, base(prompt.language, prompt.name) + "/versions/" + version.version + suffix, body);
    } catch (error) { failed(error); return; }
    cti.toast(done);
    await load();
  }

  // --- the forms ----------------------------------------------------------------------------------------------

  function activation(form) {
    const mode = form.elements.activate.value;
    const result = { activate: mode };
    if (mode === "at") result.at = form.elements.at.value ? new Date(form.elements.at.value).toISOString() : "";
    return result;
  }

  function prepareForm(form, send) {
    const error = form.querySelector(".errors");
    const button = form.querySelector("button[type=submit]");
    form.elements.activate.addEventListener("change", () => {
      form.elements.at.hidden = form.elements.activate.value !== "at";
      form.elements.at.required = form.elements.activate.value === "at";
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const name = form.elements.name.value.trim();
      const language = form.elements.language.value;
      const label = button.textContent;
      button.disabled = true;
      button.textContent = t("prompts.working");
      try {
        const added = await send(form, name, language);
        cti.toast(t("prompts.saved", { name, language, version: added.version }));
        form.reset();
        form.elements.at.hidden = true;
        shown = { name, language };
        await load();
      } catch (failure) {
        failed(failure, error);
      } finally {
        button.disabled = false;
        button.textContent = label;
      }
    });
  }

  prepareForm($("upload-form"), (form, name, language) => {
    const body = new FormData();
    body.append("file", form.elements.file.files[0]);
    body.append("note", form.elements.note.value);
    for (const [key, value] of Object.entries(activation(form))) body.append(key, value);
    return cti.api("POST", base(language, name) + "/versions", body);
  });

  prepareForm($("tts-form"), (form, name, language) => cti.api("POST", base(language, name) + "/speech",
    { text: form.elements.text.value, note: form.elements.note.value, ...activation(form) }));

  // the catalogue's text as a hint for the placeholder voice
  const tts = $("tts-form");
  const hint = () => {
    const texts = config.catalog[tts.elements.name.value.trim()] || {};
    tts.elements.text.placeholder = texts[tts.elements.language.value] || "";
  };
  tts.elements.name.addEventListener("input", hint);
  tts.elements.language.addEventListener("change", hint);
  $("prompt-filter").addEventListener("input", () => data && renderRows());

  load();
})();
