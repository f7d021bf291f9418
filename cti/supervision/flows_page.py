"""``GET /supervision/flows``: one service number's call flow as an editable YAML (or JSON) document, checked
(``POST /api/ivr/flows/validate``) and saved (``PUT /api/ivr/services/{number}/flow``) by ``static/flows.js``,
and the number's messages: every prompt its flow may play, when, and what it says.

A save is live on the next call without a restart: every call reads its number's stored flow, and the IVR's
parsed-flow cache is keyed by the flow's version, which each save bumps.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cti.http.auth import page, requires
from cti.http.identity import IDENTITY
from cti.ivr.default_flow import DEFAULT_FLOW
from cti.ivr.documents import dump_yaml
from cti.ivr.engine import NEXT_OPENING_PROMPT
from cti.ivr.flow import (
    Condition,
    Flow,
    HangupNode,
    LanguageNode,
    MenuNode,
    PlayNode,
    TransferNode,
    dump_flow,
    parse_flow,
)
from cti.ivr.store import StoredService
from cti.prompts import LANGUAGES, PromptStore, load_catalog
from cti.supervision.ivr_data import IVR_PAGES_KEY, choices, chosen, stored_services
from cti.supervision.pages import SUPERVISORS, render_page
from cti.web.i18n import pick_language, register_messages, translator

# (use, condition text, prompt) for each prompt a node may play
PromptUse = tuple[str, str, str]
USES = ("plays", "variant", "otherwise", "next_opening", "menu", "invalid", "no_input")

MESSAGES: dict[str, dict[str, str]] = {
    "flows.title": {"en": "Call flows and messages", "fr": "Parcours d'appel et messages"},
    "flows.none": {"en": "No service number yet: import one first (cti ivr import).",
                   "fr": "Aucun numéro de service : importez-en un d'abord (cti ivr import)."},
    "flows.version": {"en": "Flow version {version}", "fr": "Version du parcours : {version}"},
    "flows.default": {"en": "No flow saved: this number runs the default flow shown below (greeting or closed "
                            "message, then voicemail). Save it to change it.",
                      "fr": "Aucun parcours enregistré : ce numéro suit le parcours par défaut ci-dessous (accueil "
                            "ou message de fermeture, puis messagerie). Enregistrez-le pour le modifier."},
    "flows.saved_notice": {"en": "Saved (version {version}): the next call uses it.",
                           "fr": "Enregistré (version {version}) : le prochain appel l'utilise."},
    "flows.document": {"en": "Flow document (YAML or JSON)", "fr": "Document du parcours (YAML ou JSON)"},
    "flows.help": {"en": "The format is described in docs/IVR.md. Nothing is saved until the whole flow is valid.",
                   "fr": "Le format est décrit dans docs/IVR.md. Rien n'est enregistré tant que le parcours "
                         "entier n'est pas valide."},
    "flows.validate": {"en": "Validate", "fr": "Vérifier"},
    "flows.save": {"en": "Save the flow", "fr": "Enregistrer le parcours"},
    "flows.reset_yaml": {"en": "Saved version as YAML", "fr": "Version enregistrée en YAML"},
    "flows.reset_json": {"en": "Saved version as JSON", "fr": "Version enregistrée en JSON"},
    "flows.valid": {"en": "Valid flow ({nodes} nodes).", "fr": "Parcours valide ({nodes} nœuds)."},
    "flows.invalid": {"en": "Refused: {count} problem(s).", "fr": "Refusé : {count} problème(s)."},
    "flows.line": {"en": "line {line}", "fr": "ligne {line}"},
    "flows.messages": {"en": "Messages of this number", "fr": "Messages de ce numéro"},
    "flows.messages.help": {"en": "Every prompt the saved flow may play. Record or replace them on the voice "
                                  "prompts page.",
                            "fr": "Chaque message que le parcours enregistré peut diffuser. Enregistrez-les ou "
                                  "remplacez-les sur la page des messages vocaux."},
    "flows.node": {"en": "Node", "fr": "Nœud"},
    "flows.use": {"en": "Played", "fr": "Diffusé"},
    "flows.prompt": {"en": "Prompt", "fr": "Message"},
    "flows.text": {"en": "Text", "fr": "Texte"},
    "flows.recorded": {"en": "Recorded", "fr": "Enregistré"},
    "flows.not_in_catalog": {"en": "(recorded prompt, not in the catalog)",
                             "fr": "(message enregistré, hors catalogue)"},
    "flows.use.plays": {"en": "always", "fr": "toujours"},
    "flows.use.variant": {"en": "when {when}", "fr": "si {when}"},
    "flows.use.otherwise": {"en": "otherwise", "fr": "sinon"},
    "flows.use.next_opening": {"en": "then the next opening time", "fr": "puis la prochaine ouverture"},
    "flows.use.menu": {"en": "menu prompt", "fr": "invite du menu"},
    "flows.use.invalid": {"en": "after an invalid key", "fr": "après une touche invalide"},
    "flows.use.no_input": {"en": "after a silence", "fr": "après un silence"},
}
register_messages(MESSAGES)


@page
@requires(*SUPERVISORS)
async def flows_page(request: web.Request) -> web.StreamResponse:
    ivr = request.app[IVR_PAGES_KEY]
    services = await stored_services(ivr)
    stored = chosen(services, request.query.get("number"))
    lang = pick_language(request, request.get(IDENTITY))
    view = flows_view(stored, ivr.prompts) if stored is not None else None
    config = {"messages": script_messages(lang), "service": view and {
        "number": view["number"], "yaml": view["yaml"], "json": view["json"]}}
    saved = request.query.get("saved", "")
    return render_page(request, "flows.html", "flows", services=choices(services), view=view, config=config,
                       saved=saved if saved.isdigit() else "")


def flows_view(stored: StoredService, prompts: PromptStore) -> dict[str, Any]:
    """The stored flow (or the default one it runs) as text in both formats, and the prompts it plays."""
    document = stored.flow if stored.flow is not None else dump_flow(DEFAULT_FLOW)
    flow = parse_flow(document) if stored.flow is not None else DEFAULT_FLOW
    return {"number": stored.service.number, "name": stored.service.name, "version": stored.flow_version,
            "has_flow": stored.flow is not None, "yaml": dump_yaml(document),
            "json": json.dumps(document, indent=2, ensure_ascii=False), "messages": flow_messages(flow, prompts)}


def flow_messages(flow: Flow, prompts: PromptStore) -> list[dict[str, Any]]:
    """One row per prompt a node may play: the node, when it plays, its catalog texts, the recorded files."""
    catalog = load_catalog()
    rows = []
    for node_id, node in flow.nodes.items():
        for use, when, prompt in prompt_uses(node):
            rows.append({"node": node_id, "type": getattr(node, "type", ""), "use": use, "when": when,
                         "prompt": prompt, "texts": catalog.get(prompt),
                         "recorded": {lang: prompts.exists(lang, prompt) for lang in LANGUAGES}})
    return rows


def prompt_uses(node: object) -> list[PromptUse]:
    """When each of a node's prompts plays; variants first, as the engine tries them."""
    match node:
        case PlayNode():
            uses = [("variant", condition_text(variant.when), name) for variant in node.variants
                    for name in variant.prompts]
            uses += [("otherwise" if node.variants else "plays", "", name) for name in node.prompts]
            return uses + ([("next_opening", "", NEXT_OPENING_PROMPT)] if node.say_next_opening else [])
        case MenuNode():
            return [(use, "", name) for use, name in (("menu", node.prompt), ("invalid", node.invalid_prompt),
                                                      ("no_input", node.no_input_prompt)) if name]
        case LanguageNode():
            return [("menu", "", node.prompt)]
        case TransferNode() | HangupNode():
            return [("plays", "", name) for name in node.prompts]
    return []


def condition_text(condition: Condition) -> str:
    """``caller: vip; hours: closed, holiday``: the condition as the flow document writes it."""
    parts = []
    for key, value in condition.model_dump(exclude_defaults=True).items():
        if isinstance(value, dict):
            shown = " ".join(f"{name}={item}" for name, item in value.items() if item is not None)
        else:
            shown = ", ".join(str(item) for item in value)
        parts.append(f"{key}: {shown}")
    return "; ".join(parts)


def script_messages(lang: str) -> dict[str, str]:
    t = translator(lang)
    return {key: t(key) for key in ("flows.valid", "flows.invalid", "flows.line", "sup.error")}


def add_routes(app: web.Application) -> None:
    app.router.add_get("/supervision/flows", flows_page)
