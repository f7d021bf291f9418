// The call flows page: validates (POST /api/ivr/flows/validate) and saves (PUT .../flow) the flow document typed
// in the editor, YAML or JSON, and lists every reason the API gives with its location and, when it can be found,
// the line of the document that holds it (a click there selects that line).
"use strict";

(function () {
  const ivr = window.ctiIvr;
  const settings = ivr.config("flows-config");
  const service = settings.service;
  const text = settings.messages;
  const form = document.getElementById("flow-form");
  const editor = document.getElementById("flow-text");
  const result = document.getElementById("flow-result");
  const list = document.getElementById("flow-errors");

  function escapeRegExp(value) {
    return value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  // The 1-based line of `key:` (or "key":) at or after line `from`, or 0.
  function lineOfKey(lines, key, from) {
    const pattern = new RegExp(`^\\s*["']?${escapeRegExp(key)}["']?\\s*:`);
    for (let index = from; index < lines.length; index += 1) {
      if (pattern.test(lines[index])) return index + 1;
    }
    return 0;
  }

  // Where in the document a reason points: a YAML syntax error's own line, else the node (and key) it names.
  function lineOf(reason) {
    const syntax = /line (\d+), column \d+/.exec(reason);
    if (syntax) return +syntax[1];
    const lines = editor.value.split("\n");
    const path = ivr.errorPath(reason).split(".");
    const named = /node '([^']+)'/.exec(reason);
    const node = path[0] === "nodes" && path[1] ? path[1] : named ? named[1] : "";
    if (!node) return path[0] ? lineOfKey(lines, path[0], 0) : 0;
    const nodes = lineOfKey(lines, "nodes", 0);
    const line = lineOfKey(lines, node, nodes);
    const key = path[0] === "nodes" ? path[2] : "";
    return key && line ? lineOfKey(lines, key, line) || line : line;
  }

  function selectLine(line) {
    const lines = editor.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((total, item) => total + item.length + 1, 0);
    editor.focus();
    editor.setSelectionRange(start, start + (lines[line - 1] || "").length);
  }

  function showReasons(reasons) {
    list.replaceChildren();
    for (const reason of reasons) {
      const item = document.createElement("li");
      item.dataset.testid = "flow-error";
      const where = ivr.errorPath(reason);
      const line = lineOf(reason);
      if (line) {
        const jump = document.createElement("button");
        jump.type = "button";
        jump.className = "link-button where";
        jump.dataset.testid = "flow-error-line";
        jump.textContent = ivr.fill(text["flows.line"], { line });
        jump.addEventListener("click", () => selectLine(line));
        item.append(jump);
      }
      if (where) {
        const location = document.createElement("code");
        location.className = "where";
        location.textContent = where;
        item.append(location);
      }
      item.append(document.createTextNode(where ? reason.slice(where.length + 2) : reason));
      list.append(item);
    }
    list.hidden = reasons.length === 0;
  }

  function refused(error) {
    const reasons = ivr.reasonsOf(error);
    result.className = "flow-result";
    result.textContent = ivr.fill(text["flows.invalid"], { count: reasons.length });
    showReasons(reasons);
  }

  async function send(method, url) {
    return window.cti.api(method, url, editor.value, { contentType: "application/yaml" });
  }

  async function validate() {
    try {
      const answer = await send("POST", "/api/ivr/flows/validate");
      showReasons([]);
      result.className = "flow-result ok";
      result.textContent = ivr.fill(text["flows.valid"], { nodes: answer.nodes });
    } catch (error) {
      refused(error);
    }
  }

  async function save(event) {
    event.preventDefault();
    try {
      const answer = await send("PUT", "/api/ivr/services/" + encodeURIComponent(service.number) + "/flow");
      const query = new URLSearchParams({ number: service.number, saved: answer.version });
      location.assign(location.pathname + "?" + query.toString());
    } catch (error) {
      refused(error);
    }
  }

  form.addEventListener("submit", save);
  document.getElementById("validate").addEventListener("click", validate);
  form.querySelectorAll("button[data-format]").forEach((button) => {
    button.addEventListener("click", () => {
      editor.value = service[button.dataset.format];
      showReasons([]);
      result.textContent = "";
    });
  });
})();
