"""The core pages' texts (layout, login form); every key in English and French."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "app.name": {"en": "Help desk", "fr": "Centre d'assistance"},
    "app.skip_to_content": {"en": "Skip to content", "fr": "Aller au contenu"},
    "lang.switch": {"en": "Language", "fr": "Langue"},
    "lang.en": {"en": "English", "fr": "English"},
    "lang.fr": {"en": "Français", "fr": "Français"},
    "nav.signed_in_as": {"en": "Signed in as {name}", "fr": "Connecté·e : {name}"},
    "nav.logout": {"en": "Log out", "fr": "Se déconnecter"},
    "login.title": {"en": "Log in", "fr": "Connexion"},
    "login.intro": {
        "en": "Log in with your help desk account.",
        "fr": "Connectez-vous avec votre compte du centre d'assistance.",
    },
    "login.username": {"en": "Username", "fr": "Identifiant"},
    "login.password": {"en": "Password", "fr": "Mot de passe"},
    "login.submit": {"en": "Log in", "fr": "Se connecter"},
    "login.failed": {"en": "Wrong username or password.", "fr": "Identifiant ou mot de passe incorrect."},
    "login.unavailable": {
        "en": "Logging in is not possible right now; try again in a moment.",
        "fr": "La connexion est impossible pour le moment ; réessayez dans un instant.",
    },
    "login.throttled": {
        "en": "Too many failed login attempts. Try again in {minutes} minute(s).",
        "fr": "Trop de tentatives de connexion échouées. Réessayez dans {minutes} minute(s).",
    },
    "login.forbidden": {
        "en": "This form was sent from another site; open the login page again.",
        "fr": "Ce formulaire vient d'un autre site ; rouvrez la page de connexion.",
    },
}
