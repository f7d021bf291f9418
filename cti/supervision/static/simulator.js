// The simulators page: (1) what a caller hears (POST /api/ivr/simulate), step by step with each prompt's text;
// (2) real test calls (/api/simulator/calls): place one, press keys on its keypad, hang up; the calls' states
// are polled while one is in progress.
"use strict";

(function () {
  const ivr = window.ctiIvr;
  const settings = ivr.config("simulator-config");
  const text = settings.messages;
  const POLL_MS = 2000;

  // --- (1) the IVR simulator ---------------------------------------------------------------------------------

  const simForm = document.getElementById("ivr-sim-form");
  const simErrors = simForm.querySelector("[data-testid=ivr-sim-errors]");

  function zoneOf(number) {
    const service = settings.services.find((item) => item.number === number);
    return service ? service.timezone : "UTC";
  }

  function resetInstant() {
    const zone = zoneOf(simForm.elements.number.value);
    document.getElementById("ivr-sim-zone").textContent = "(" + zone + ")";
    simForm.elements.at.value = ivr.instantToWall(settings.now, zone);
  }

  function stepText(step) {
    const said = settings.prompts[step.prompt];
    switch (step.action) {
      case "play":
        return [ivr.fill(text["sim.step.play"], step), said];
      case "read":
        return [ivr.fill(text["sim.step.read"], { prompt: step.prompt, key: step.key || text["sim.step.silence"] }), said];
      case "say_datetime":
        return [ivr.fill(text["sim.step.say_datetime"], { when: ivr.shown(step.when) }), ""];
      default:
        return [ivr.fill(text["sim.step.language"], step), ""];
    }
  }

  function showSimulation(result) {
    const steps = document.getElementById("ivr-sim-steps");
    steps.replaceChildren(...result.steps.map((step) => {
      const [what, said] = stepText(step);
      const item = document.createElement("li");
      item.dataset.testid = "ivr-sim-step";
      item.dataset.action = step.action;
      item.textContent = what;
      if (said) {
        const quote = document.createElement("span");
        quote.className = "said";
        quote.textContent = " « " + said + " »";
        item.append(quote);
      }
      return item;
    }));
    document.getElementById("ivr-sim-path").textContent = result.path.join(" > ");
    const outcome = result.outcome;
    document.getElementById("ivr-sim-outcome").textContent = ivr.fill(text["sim.outcome." + outcome.kind], outcome);
    const unused = document.getElementById("ivr-sim-unused");
    unused.hidden = result.unused_keys.length === 0;
    unused.textContent = ivr.fill(text["sim.unused"], { keys: result.unused_keys.join(", ") });
    document.getElementById("ivr-sim-result").hidden = false;
  }

  async function simulate(event) {
    event.preventDefault();
    const number = simForm.elements.number.value;
    const body = { number, caller: simForm.elements.caller.value.trim(), keys: simForm.elements.keys.value };
    const at = ivr.wallToInstant(simForm.elements.at.value, zoneOf(number));
    if (at) body.at = at;
    try {
      showSimulation(await window.cti.api("POST", "/api/ivr/simulate", body));
      ivr.clearErrors(simForm, simErrors);
    } catch (error) {
      document.getElementById("ivr-sim-result").hidden = true;
      ivr.showErrors(simForm, simErrors, ivr.reasonsOf(error));
    }
  }

  // --- (2) the call simulator ------------------------------------------------------------------------------

  const callForm = document.getElementById("call-sim-form");
  const callErrors = document.querySelector("[data-testid=call-sim-errors]");
  const board = document.getElementById("call-sim-calls");
  const cards = new Map();
  let sending = Promise.resolve();
  let polling = null;

  function cardFor(call) {
    let card = cards.get(call.id);
    if (!card) {
      card = document.getElementById("call-template").content.firstElementChild.cloneNode(true);
      card.dataset.callId = call.id;
      cards.set(call.id, card);
      board.prepend(card);
    }
    return card;
  }

  function showCall(call) {
    const card = cardFor(call);
    card.dataset.state = call.state;
    card.querySelector(".call-title").textContent = ivr.fill(text["sim.call.title"], { caller: call.caller_id, number: call.number });
    card.querySelector(".call-state").textContent = text["sim.call.state." + call.state] + (call.cause ? " (" + call.cause + ")" : "");
    card.querySelector(".call-channel").textContent = call.channel;
    card.querySelector(".call-digits").textContent = ivr.fill(text["sim.call.digits"], { digits: call.digits || "–" });
    card.querySelectorAll("button").forEach((button) => { button.disabled = call.state !== "up"; });
    document.getElementById("call-sim-none").hidden = cards.size > 0;
    if (call.state === "up") startPolling();
  }

  function failed(error) {
    window.cti.toast(ivr.fill(text["sup.error"], { message: ivr.reasonsOf(error).join("; ") }), "error");
  }

  async function place(event) {
    event.preventDefault();
    const button = callForm.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = text["sim.call.placing"];
    try {
      const call = await window.cti.api("POST", "/api/simulator/calls", {
        number: callForm.elements.number.value.trim(), caller_id: callForm.elements.caller_id.value.trim() });
      ivr.clearErrors(callForm, callErrors);
      showCall(call);
    } catch (error) {
      ivr.showErrors(callForm, callErrors, ivr.reasonsOf(error));
      failed(error);
    } finally {
      button.disabled = false;
      button.textContent = text["sim.call.place"];
    }
  }

  // Keys are sent one request after the other, so they reach the call in the order they were pressed.
  function press(callId, key) {
    sending = sending.then(async () => {
      try {
        showCall(await window.cti.api("POST", "/api/simulator/calls/" + callId + "/dtmf", { digits: key }));
      } catch (error) {
        failed(error);
        await refresh();
      }
    });
  }

  async function hangUp(callId) {
    try {
      showCall(await window.cti.api("DELETE", "/api/simulator/calls/" + callId));
    } catch (error) {
      failed(error);
      await refresh();
    }
  }

  async function refresh() {
    const answer = await window.cti.api("GET", "/api/simulator/calls");
    answer.calls.slice().reverse().forEach(showCall);
    if (!answer.calls.some((call) => call.state === "up")) stopPolling();
  }

  function startPolling() {
    if (polling === null) polling = setInterval(() => refresh().catch(() => {}), POLL_MS);
  }

  function stopPolling() {
    if (polling !== null) clearInterval(polling);
    polling = null;
  }

  board.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    const card = button && button.closest("[data-call-id]");
    if (!card) return;
    if (button.dataset.key) press(card.dataset.callId, button.dataset.key);
    else if (button.classList.contains("hang-up")) hangUp(card.dataset.callId);
  });

  simForm.elements.number.addEventListener("change", resetInstant);
  simForm.addEventListener("submit", simulate);
  callForm.addEventListener("submit", place);
  if (settings.services.length) resetInstant();
  refresh().catch(() => {});
})();
