// The agent desktop: one websocket (/ws/agent), the agent's state buttons, and a card per call on screen.
// Everything shown comes from the server's events; every text from the server is set with textContent.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("desk-config").textContent);
  const words = config.messages;
  const state = { lastSeq: null, stream: null, status: null, cards: new Map(), socket: null, retry: 0,
                  pending: new Map(), nextId: 1, outcomes: config.outcomes };

  const $ = (selector, root) => (root || document).querySelector(selector);
  const t = (key, values) => {
    let text = words[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.replace("{" + name + "}", value);
    return text;
  };
  const el = (tag, attributes, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value; else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  };

  // --- connection --------------------------------------------------------------------------------------
  // A reconnect asks for what it missed after the last event shown, on the numbering (stream) it was counted on.
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const since = state.lastSeq === null || !state.stream ? ""
      : "?since=" + state.lastSeq + "&stream=" + encodeURIComponent(state.stream);
    const socket = new WebSocket(scheme + "//" + location.host + "/ws/agent" + since);
    state.socket = socket;
    setConnection("connecting");
    socket.onmessage = (message) => receive(JSON.parse(message.data));
    socket.onclose = (event) => {
      state.socket = null;
      for (const [, pending] of state.pending) pending.reject(new Error("connection lost"));
      state.pending.clear();
      setConnection("reconnecting");
      const delay = Math.min(10000, 500 * 2 ** state.retry++);
      setTimeout(reconnect, delay);
    };
  }

  // A refused handshake looks like any lost connection to a browser: ask whether the login is still valid.
  async function reconnect() {
    if (state.retry > 1) {
      try {
        const me = await fetch("/api/auth/me", { credentials: "same-origin" });
        if (me.status === 401) { location.href = "/login?next=/agent"; return; }
      } catch (error) { /* the server is down: keep trying */ }
    }
    connect();
  }

  function setConnection(kind) {
    const banner = $("#connection");
    banner.dataset.state = kind;
    banner.textContent = t("desk." + kind);
  }

  function command(cmd, args) {
    return new Promise((resolve, reject) => {
      if (!state.socket || state.socket.readyState !== WebSocket.OPEN) { reject(new Error("not connected")); return; }
      const id = "c" + state.nextId++;
      state.pending.set(id, { resolve, reject });
      state.socket.send(JSON.stringify({ id, cmd, args: args || {} }));
    });
  }

  async function act(cmd, args, done) {
    try {
      const result = await command(cmd, args);
      if (done) toast(done(result), "ok");
      return result;
    } catch (error) {
      toast(t("error.generic", { message: error.message }), "error");
      return null;
    }
  }

  // --- events ----------------------------------------------------------------------------------------------
  function receive(event) {
    if (event.seq !== null && event.seq !== undefined) {
      if (state.lastSeq !== null && event.seq <= state.lastSeq) return;  // already shown (a replay overlap)
      state.lastSeq = event.seq;
    }
    const handler = handlers[event.type];
    if (handler) handler(event.data || {});
  }

  const handlers = {
    // Resumed: the screen and lastSeq (the since sent) stay, and the replayed events that follow apply on top.
    // Not resumed: this snapshot, its numbering and its stream replace what was shown.
    hello(data) {
      state.retry = 0;
      setConnection("connected");
      $("#agent-name").textContent = data.agent ? data.agent.name || data.agent.id : "";
      if (data.outcomes) state.outcomes = data.outcomes;
      if (!data.resumed) {
        state.lastSeq = data.last_seq;
        state.stream = data.stream || null;
        state.cards.clear();
        for (const card of data.cards || []) state.cards.set(card.call_id, card);
      }
      if (data.status) showStatus(data.status);
      renderCards();
    },
    agent_state(data) { showStatus(data); },
    call_ringing(card) { state.cards.set(card.call_id, card); renderCards(); },
    call_updated(card) { state.cards.set(card.call_id, card); renderCards(); },
    call_answered(data) { patch(data.call_id, { status: "answered", answered_at: data.answered_at }); },
    call_ended(data) { patch(data.call_id, { status: "ended", ended_at: data.ended_at, talk_s: data.talk_s }); },
    call_closed(data) { state.cards.delete(data.call_id); renderCards(); },
    call_withdrawn(data) {
      if (state.cards.delete(data.call_id)) toast(t("card.withdrawn." + data.reason), "info");
      renderCards();
    },
    reply(data) {
      const pending = state.pending.get(data.reply_to);
      if (!pending) { if (!data.ok) toast(t("error.generic", { message: data.message }), "error"); return; }
      state.pending.delete(data.reply_to);
      if (data.ok) pending.resolve(data.result); else pending.reject(new Error(data.message));
    },
  };

  function patch(callId, changes) {
    const card = state.cards.get(callId);
    if (card) { Object.assign(card, changes); renderCards(); }
  }

  // --- the agent's state --------------------------------------------------------------------------------------
  function showStatus(status) {
    state.status = status;
    const badge = $("#state");
    badge.dataset.state = status.state;
    badge.textContent = t("state." + status.state) + (status.reason ? " — " + status.reason : "");
    const s = status.state;
    $("#login-form").hidden = s !== "logged_out";
    $("#pause-form").hidden = s !== "available" && s !== "wrap_up";
    $("#resume").hidden = s !== "paused";
    $("#end-wrap-up").hidden = s !== "wrap_up";
    $("#logout").hidden = s === "logged_out" || s === "ringing" || s === "on_call";
  }

  // --- cards ----------------------------------------------------------------------------------------------------
  function renderCards() {
    const list = $("#cards");
    const cards = [...state.cards.values()];
    for (const node of [...list.children]) if (!state.cards.has(node.dataset.call)) node.remove();
    for (const card of cards) {
      const old = list.querySelector('[data-call="' + CSS.escape(card.call_id) + '"]');
      const fresh = renderCard(card);
      if (old) { keepTyping(old, fresh); old.replaceWith(fresh); } else list.append(fresh);
    }
    $("#no-calls").hidden = cards.length > 0;
    document.title = (cards.some((card) => card.status === "ringing") ? "☎ " : "") + t("desk.title");
  }

  // What the agent was typing in a card survives the card being redrawn (its content changed meanwhile).
  function keepTyping(old, fresh) {
    for (const field of old.querySelectorAll("input, textarea, select")) {
      const form = field.closest("form");
      if (!form || !field.name || field.value === "") continue;
      const twin = fresh.querySelector('[data-testid="' + form.dataset.testid + '"] [name="' + field.name + '"]');
      if (!twin || !field.dataset.typed) continue;
      twin.value = field.value;
      twin.dataset.typed = "1";
      if (document.activeElement === field) requestAnimationFrame(() => twin.focus());
    }
  }

  function callerTitle(card) {
    if (card.contact) return card.contact.name;
    if (card.caller.anonymous) return t("card.withheld");
    return card.caller.number || card.caller.received || t("card.unknown_caller");
  }

  function renderCard(card) {
    const status = card.status || "ringing";
    const node = el("article", { class: "card", "data-testid": "call-card", "data-call": card.call_id,
                                 "data-status": status });
    const badges = el("p", { class: "badges" },
      el("span", { class: "badge status", "data-testid": "card-status", text: t("card." + status) }),
      card.vip ? el("span", { class: "badge vip", "data-testid": "card-vip", text: t("card.vip") }) : null,
      card.contract_level ? el("span", { class: "badge contract", "data-testid": "card-contract",
                                         text: t("card.contract") + " " + card.contract_level }) : null);
    node.append(el("header", {},
      el("h2", { "data-testid": "card-caller", text: callerTitle(card) }),
      el("p", { class: "number", "data-testid": "card-number",
                text: card.contact || !card.caller.anonymous ? card.caller.number || card.caller.received : "" }),
      badges));
    node.append(facts(card), history(card));
    node.append(actions(card));
    return node;
  }

  function fact(label, value, testid, joined) {
    if (value === null || value === undefined || value === "") return null;
    return el("div", {}, el("dt", { text: label }),
              el("dd", { "data-testid": testid, "data-joined": joined, text: String(value) }));
  }

  function facts(card) {
    const waited = card.status === "ringing" && card.joined_at
      ? Math.round((Date.now() - Date.parse(card.joined_at)) / 1000) : card.waited_s;
    const digits = (card.ivr && card.ivr.digits) || [];
    return el("dl", { class: "facts" },
      fact(t("card.company"), card.company, "card-company"),
      fact(t("card.called"), [card.called.service, card.called.number].filter(Boolean).join(" — "), "card-called"),
      fact(t("card.queue"), card.queue, "card-queue"),
      fact(t("card.language"), card.language, "card-language"),
      fact(t("card.waited"), formatSeconds(waited), "card-waited",
           card.status === "ringing" ? card.joined_at : null),
      card.talk_s !== undefined ? fact(t("card.talked"), formatSeconds(card.talk_s), "card-talked") : null,
      fact(t("card.digits"), digits.join(" "), "card-digits"),
      fact(t("card.ivr_path"), ((card.ivr && card.ivr.path) || []).join(" › "), "card-ivr"),
      fact(t("card.tickets_of_call"),
           [...(card.tickets_filed || []), ...(card.tickets_linked || [])].map((id) => "#" + id).join(", "),
           "card-call-tickets"));
  }

  function listSection(title, items, testid, line) {
    const section = el("section", { "data-testid": testid }, el("h3", { text: title }));
    const list = el("ul");
    for (const item of items || []) list.append(el("li", { text: line(item) }));
    section.append(items && items.length ? list : el("p", { class: "muted", text: t("card.nothing") }));
    return section;
  }

  function history(card) {
    return el("div", { class: "history" },
      listSection(t("card.open_tickets"), card.open_tickets, "card-tickets",
        (ticket) => (ticket.reference || "#" + ticket.id) + " — " + ticket.subject + " (" + ticket.status + ")"),
      listSection(t("card.recent_calls"), card.recent_calls, "card-calls",
        (call) => formatDate(call.started_at) + " — " + call.outcome + (call.agent_id ? " — " + call.agent_id : "")),
      listSection(t("card.voicemails"), card.voicemails, "card-voicemails",
        (vm) => formatDate(vm.created_at) + " — " + formatSeconds(vm.duration_s) +
                (vm.ticket_id ? " — #" + vm.ticket_id : "")));
  }

  function actions(card) {
    const box = el("div", { class: "actions" });
    if (card.offer_create_contact) box.append(contactForm(card));
    box.append(outcomeForm(card), ticketForm(card), linkForm(card));
    if (card.status === "ended") {
      const dismiss = el("button", { type: "button", class: "secondary", "data-testid": "card-dismiss",
                                     text: t("card.dismiss") });
      dismiss.onclick = () => act("dismiss", { call_id: card.call_id });
      box.append(dismiss);
    }
    return box;
  }

  // A form of a card; once its command succeeded it is emptied, in whichever copy of the card is on screen now.
  function form(title, testid, fields, button, submit) {
    const node = el("form", { "data-testid": testid }, el("h3", { text: title }), ...fields,
                    el("button", { type: "submit", text: button }));
    node.onsubmit = async (event) => {
      event.preventDefault();
      const card = node.closest("[data-call]");
      const result = await submit(new FormData(node));
      if (result === null || !card || testid === "outcome-form") return;
      const current = $('[data-call="' + CSS.escape(card.dataset.call) + '"] [data-testid="' + testid + '"]');
      if (!current) return;
      current.reset();
      for (const field of current.elements) delete field.dataset.typed;
    };
    return node;
  }

  const input = (name, label, attributes) =>
    el("label", {}, el("span", { text: label }), el("input", { name, ...(attributes || {}) }));

  function outcomeForm(card) {
    const select = el("select", { name: "outcome", required: true });
    for (const outcome of state.outcomes) {
      select.append(el("option", { value: outcome, text: t("outcome." + outcome),
                                   selected: card.outcome === outcome }));
    }
    return form(t("outcome.title"), "outcome-form",
      [el("label", {}, el("span", { text: t("outcome.title") }), select),
       input("note", t("outcome.note"), { maxlength: 2000, value: card.outcome_note || "" })],
      t("outcome.save"),
      (data) => act("set_outcome", { call_id: card.call_id, outcome: data.get("outcome"), note: data.get("note") },
                    () => t("outcome.saved")));
  }

  function ticketForm(card) {
    return form(t("ticket.title"), "ticket-form",
      [input("subject", t("ticket.subject"), { required: true, maxlength: 200 }),
       el("label", {}, el("span", { text: t("ticket.description") }),
          el("textarea", { name: "description", maxlength: 10000, rows: 3 }))],
      t("ticket.create"),
      (data) => act("create_ticket", { call_id: card.call_id, subject: data.get("subject"),
                                       description: data.get("description") },
                    (result) => t("ticket.created", { reference: result.reference || "#" + result.ticket_id })));
  }

  function linkForm(card) {
    return form("", "link-form", [input("ticket_id", t("ticket.link_id"), { required: true, inputmode: "numeric" })],
      t("ticket.link"),
      (data) => act("link_ticket", { call_id: card.call_id, ticket_id: data.get("ticket_id") },
                    (result) => t("ticket.linked", { reference: result.reference || "#" + result.ticket_id })));
  }

  function contactForm(card) {
    return form(t("contact.title"), "contact-form",
      [input("name", t("contact.name"), { required: true, maxlength: 200 }),
       input("email", t("contact.email"), { type: "email", maxlength: 254 }),
       input("company", t("contact.company"), { maxlength: 200 })],
      t("contact.create"),
      (data) => act("create_contact", { call_id: card.call_id, name: data.get("name"), email: data.get("email"),
                                        company: data.get("company") }, () => t("contact.created")));
  }

  // --- small things ---------------------------------------------------------------------------------------------
  function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
    const total = Math.max(0, Math.round(seconds));
    return Math.floor(total / 60) + ":" + String(total % 60).padStart(2, "0");
  }

  function formatDate(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(config.language);
  }

  function toast(text, kind) {
    const node = el("p", { class: "toast " + kind, role: kind === "error" ? "alert" : "status",
                           "data-testid": "toast", text });
    $("#toasts").append(node);
    setTimeout(() => node.remove(), 6000);
  }

  function wireControls() {
    $("#login-form").onsubmit = (event) => {
      event.preventDefault();
      const extension = $("#extension").value.trim();
      act("login", extension ? { extension } : {});
    };
    $("#pause-form").onsubmit = (event) => {
      event.preventDefault();
      act("pause", { reason: $("#pause-reason").value });
    };
    $("#resume").onclick = () => act("resume");
    $("#logout").onclick = () => act("logout");
    $("#end-wrap-up").onclick = () => act("end_wrap_up");
    $("#dial-form").onsubmit = (event) => {
      event.preventDefault();
      const number = $("#dial-number").value.trim();
      act("dial", { number }, (result) => t("dial.started", { number: result.number }));
    };
    document.addEventListener("input", (event) => { if (event.target.name) event.target.dataset.typed = "1"; });
    setInterval(() => {
      for (const node of document.querySelectorAll("[data-joined]")) {
        node.textContent = formatSeconds((Date.now() - Date.parse(node.dataset.joined)) / 1000);
      }
    }, 1000);
  }

  wireControls();
  connect();
})();
