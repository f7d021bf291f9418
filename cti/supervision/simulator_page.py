"""``GET /supervision/simulator``: two ways to try a number before callers do.

- The IVR simulator: what a caller on number N hears at instant T pressing keys K, without a call
  (``POST /api/ivr/simulate``): each prompt with its text, each key read, the path and where the call ends.
- The call simulator: a real call into the local Asterisk with a chosen caller ID, a keypad to press keys
  during it, and a hang-up button (``/api/simulator/calls``, :mod:`cti.supervision.simulator_http`).

``static/simulator.js`` drives both from the page's configuration.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cti.http.auth import page, requires
from cti.http.identity import IDENTITY
from cti.prompts import load_catalog
from cti.supervision.ivr_data import IVR_PAGES_KEY, choices, stored_services
from cti.supervision.pages import SUPERVISORS, render_page
from cti.supervision.simulator_http import SIMULATOR_KEY
from cti.web.i18n import pick_language, register_messages, translator

DEFAULT_CALLER = "0612345678"
KEYPAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
OUTCOMES = ("enqueue", "voicemail", "transfer", "hangup")

MESSAGES: dict[str, dict[str, str]] = {
    "sim.title": {"en": "Simulators", "fr": "Simulateurs"},
    "sim.none": {"en": "No service number yet: import one first (cti ivr import).",
                 "fr": "Aucun numéro de service : importez-en un d'abord (cti ivr import)."},
    "sim.ivr": {"en": "What does a caller hear?", "fr": "Qu'entend l'appelant ?"},
    "sim.ivr.help": {"en": "Runs the number's saved flow at the chosen instant, without a call. Keys: one entry "
                           "per menu, separated by commas; an empty entry is a silence (\"1,,9\").",
                     "fr": "Déroule le parcours enregistré du numéro à l'instant choisi, sans appel. Touches : "
                           "une entrée par menu, séparées par des virgules ; une entrée vide est un silence "
                           "(« 1,,9 »)."},
    "sim.number": {"en": "Number called", "fr": "Numéro appelé"},
    "sim.caller": {"en": "Caller's number", "fr": "Numéro de l'appelant"},
    "sim.at": {"en": "At (the number's time zone)", "fr": "À (fuseau du numéro)"},
    "sim.keys": {"en": "Keys pressed", "fr": "Touches composées"},
    "sim.run": {"en": "Simulate", "fr": "Simuler"},
    "sim.steps": {"en": "What the caller hears", "fr": "Ce qu'entend l'appelant"},
    "sim.step.play": {"en": "plays {prompt} ({language})", "fr": "diffuse {prompt} ({language})"},
    "sim.step.read": {"en": "plays {prompt} and reads a key: {key}",
                      "fr": "diffuse {prompt} et lit une touche : {key}"},
    "sim.step.silence": {"en": "silence", "fr": "silence"},
    "sim.step.say_datetime": {"en": "says the date and time {when}", "fr": "annonce la date et l'heure {when}"},
    "sim.step.language": {"en": "switches to language {language}", "fr": "passe en langue {language}"},
    "sim.path": {"en": "Path", "fr": "Chemin"},
    "sim.outcome": {"en": "Ends in", "fr": "Aboutit à"},
    "sim.outcome.enqueue": {"en": "queue {queue}", "fr": "file {queue}"},
    "sim.outcome.voicemail": {"en": "voicemail ({reason})", "fr": "messagerie ({reason})"},
    "sim.outcome.transfer": {"en": "transfer to {number}", "fr": "transfert vers {number}"},
    "sim.outcome.hangup": {"en": "hang-up", "fr": "raccroché"},
    "sim.unused": {"en": "Keys not used: {keys}", "fr": "Touches non utilisées : {keys}"},
    "sim.call": {"en": "Place a real test call", "fr": "Passer un vrai appel de test"},
    "sim.call.help": {"en": "A real call into the local Asterisk, as a caller with this number (digits and an "
                            "optional +, at most 20). The keypad presses keys during the call. At most {max} "
                            "test calls at once.",
                      "fr": "Un vrai appel dans l'Asterisk local, comme un appelant avec ce numéro (chiffres et "
                            "un + facultatif, 20 au plus). Le clavier compose des touches pendant l'appel. "
                            "{max} appels de test au plus en même temps."},
    "sim.call.place": {"en": "Call", "fr": "Appeler"},
    "sim.call.placing": {"en": "Calling…", "fr": "Appel en cours…"},
    "sim.call.hangup": {"en": "Hang up", "fr": "Raccrocher"},
    "sim.call.state.up": {"en": "In progress", "fr": "En cours"},
    "sim.call.state.ended": {"en": "Ended", "fr": "Terminé"},
    "sim.call.digits": {"en": "Keys sent: {digits}", "fr": "Touches envoyées : {digits}"},
    "sim.call.keypad": {"en": "Keypad", "fr": "Clavier"},
    "sim.call.none": {"en": "No test call.", "fr": "Aucun appel de test."},
    "sim.call.title": {"en": "{caller} → {number}", "fr": "{caller} → {number}"},
}
register_messages(MESSAGES)


@page
@requires(*SUPERVISORS)
async def simulator_page(request: web.Request) -> web.StreamResponse:
    ivr = request.app[IVR_PAGES_KEY]
    services = choices(await stored_services(ivr))
    lang = pick_language(request, request.get(IDENTITY))
    max_calls = request.app[SIMULATOR_KEY].max_calls
    config: dict[str, Any] = {
        "messages": script_messages(lang), "services": services, "now": ivr.clock().isoformat(),
        "prompts": {name: texts[lang] for name, texts in load_catalog().items()}, "max_calls": max_calls}
    return render_page(request, "simulator.html", "simulator", services=services, config=config,
                       default_caller=DEFAULT_CALLER, keypad=KEYPAD, max_calls=max_calls)


def script_messages(lang: str) -> dict[str, str]:
    """The texts simulator.js writes (steps, outcomes, call states), in the page's language."""
    t = translator(lang)
    keys = [key for key in MESSAGES if key.startswith(("sim.step.", "sim.outcome.", "sim.call."))]
    return {key: t(key) for key in [*keys, "sim.unused", "sim.path", "sim.outcome", "sup.error"]}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/supervision/simulator", simulator_page)
