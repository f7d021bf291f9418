// Shared by the supervision pages: JSON calls to the API with the session's CSRF token, and toasts.
"use strict";

window.cti = (function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function api(method, url, body, options) {
    const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf() } };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = (options && options.contentType) || "application/json";
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const response = await fetch(url, init);
    if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); }
    const type = response.headers.get("Content-Type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const error = new Error((data && data.message) || response.statusText);
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  function toast(text, kind) {
    const node = document.createElement("p");
    node.textContent = text;
    node.className = kind || "";
    node.setAttribute("role", kind === "error" ? "alert" : "status");
    node.dataset.testid = "toast";
    document.getElementById("toasts").append(node);
    setTimeout(() => node.remove(), 6000);
  }

  return { api, toast, csrf };
})();
