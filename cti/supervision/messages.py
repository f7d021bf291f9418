"""The supervision screen's shared words (navigation, common buttons), in English and French.

Each page module registers its own texts next to its code; these are the ones every page shows.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "sup.title": {"en": "Supervision", "fr": "Supervision"},
    "sup.nav": {"en": "Supervision pages", "fr": "Pages de supervision"},
    "sup.nav.wallboard": {"en": "Wallboard", "fr": "Tableau de bord"},
    "sup.nav.prompts": {"en": "Voice prompts", "fr": "Messages vocaux"},
    "sup.nav.hours": {"en": "Opening hours", "fr": "Horaires"},
    "sup.nav.flows": {"en": "Call flows", "fr": "Parcours d'appel"},
    "sup.nav.reports": {"en": "Reports", "fr": "Rapports"},
    "sup.nav.simulator": {"en": "Call simulator", "fr": "Simulateur d'appel"},
    "sup.nav.agent": {"en": "Agent desktop", "fr": "Poste agent"},
    "sup.save": {"en": "Save", "fr": "Enregistrer"},
    "sup.cancel": {"en": "Cancel", "fr": "Annuler"},
    "sup.saved": {"en": "Saved", "fr": "Enregistré"},
    "sup.error": {"en": "Refused: {message}", "fr": "Refusé : {message}"},
    "sup.loading": {"en": "Loading…", "fr": "Chargement…"},
}
