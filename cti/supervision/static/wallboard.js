// The live wallboard: draws the server's view (queues, totals, agents) and follows /ws/wallboard.
// Thresholds are applied by the server: a figure named in a row's "alerts" gets class "bad" and data-alert="true".
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("wallboard-config").textContent);
  const words = config.messages;
  const QUEUE_FIGURES = ["waiting", "longest_wait_s", "estimated_wait_s", "in_progress", "offered", "answered",
                         "abandoned", "service_level_pct", "abandon_rate_pct", "asa_s", "aht_s"];
  let retry = 0;

  const $ = (id) => document.getElementById(id);
  const t = (key, values) => {
    let text = words[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.replace("{" + name + "}", value);
    return text;
  };
  const shown = (value) => (value === null || value === undefined ? "–" : String(Math.round(value * 10) / 10));

  function cell(tag, text, testid) {
    const node = document.createElement(tag);
    node.textContent = text;
    if (testid) node.dataset.testid = testid;
    return node;
  }

  function figureCell(row, figure, testid, tag) {
    const node = cell(tag || "td", shown(row[figure]), testid);
    const alert = (row.alerts || []).includes(figure);
    node.className = "num" + (alert ? " bad" : "");
    node.dataset.figure = figure;
    node.dataset.alert = alert ? "true" : "false";
    return node;
  }

  function drawQueues(view) {
    const body = $("wall-queue-rows");
    body.replaceChildren(...view.queues.map((queue) => {
      const row = document.createElement("tr");
      row.dataset.testid = "queue-" + queue.name;
      const label = cell("th", queue.label, "queue-label-" + queue.name);
      label.scope = "row";
      row.append(label, ...QUEUE_FIGURES.map((figure) => figureCell(queue, figure, figure + "-" + queue.name)));
      return row;
    }));
    $("wall-no-queues").hidden = view.queues.length > 0;
    const totals = document.createElement("tr");
    const label = cell("th", t("wall.total"));
    label.scope = "row";
    totals.append(label, ...QUEUE_FIGURES.map((figure) => figureCell(view.totals, figure, "total-" + figure)));
    $("wall-totals").replaceChildren(totals);
  }

  function drawAgents(view) {
    const agents = view.agents;
    const occupancy = $("wall-occupancy");
    const alert = view.totals.alerts.includes("occupancy_pct");
    occupancy.textContent = shown(agents.occupancy_pct);
    occupancy.className = alert ? "bad" : "";
    occupancy.dataset.alert = alert ? "true" : "false";
    $("wall-states").replaceChildren(...Object.entries(agents.by_state).map(([state, count]) =>
      cell("li", t("wall.count", { label: t("wall.state." + state), count: count }), "agents-" + state)));
    const reasons = Object.entries(agents.pause_reasons).map(([reason, count]) => reason + " (" + count + ")");
    $("wall-reasons").textContent = reasons.length ? reasons.join(", ") : "–";
    $("wall-agent-rows").replaceChildren(...agents.list.map((agent) => {
      const row = document.createElement("tr");
      row.dataset.testid = "agent-" + agent.id;
      row.dataset.state = agent.state;
      row.append(cell("td", agent.name), cell("td", t("wall.state." + agent.state), "agent-state-" + agent.id),
                 cell("td", agent.reason || "", "agent-reason-" + agent.id), cell("td", minutes(agent.since_s)));
      row.lastChild.className = "num";
      return row;
    }));
    $("wall-no-agents").hidden = agents.list.length > 0;
  }

  function minutes(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const whole = Math.max(0, Math.round(seconds));
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function draw(view) {
    drawQueues(view);
    drawAgents(view);
    $("wall-day").textContent = view.day ? t("wall.today", { day: view.day, zone: view.timezone }) : "";
    $("wall-nodes").textContent = t("wall.nodes", { count: view.nodes.length });
  }

  function setConnection(kind) {
    const banner = $("wall-connection");
    banner.dataset.state = kind;
    banner.textContent = t("wall." + kind);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + config.socket);
    socket.onopen = () => { retry = 0; setConnection("connected"); };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "snapshot" || event.type === "update") draw(event.data);
    };
    socket.onclose = () => {
      setConnection("reconnecting");
      setTimeout(reconnect, Math.min(10000, 500 * 2 ** retry++));
    };
  }

  // A refused handshake looks like any lost connection: ask whether the login is still valid.
  async function reconnect() {
    if (retry > 1) {
      try {
        const me = await fetch("/api/auth/me", { credentials: "same-origin" });
        if (me.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
      } catch (error) { /* the server is down: keep trying */ }
    }
    connect();
  }

  draw(config.view);
  connect();
})();
