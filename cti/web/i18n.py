"""Texts in English and French, the language of a page, and rendering HTML pages with jinja2.

Every package with pages registers its texts (``register_messages``) and its templates folder
(``add_template_dir``) at import; templates extend ``base.html`` and write texts as ``{{ t("key") }}``.
A message is ``{key: {"en": ..., "fr": ...}}``: a key without both languages is refused at registration,
so a page can never show half its texts untranslated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from cti.errors import CtiError
from cti.http.identity import IDENTITY, Identity
from cti.web.messages import MESSAGES

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LANG_COOKIE = "cti_lang"
LANG_COOKIE_MAX_AGE = 365 * 86400
CORE_TEMPLATES = Path(__file__).with_name("templates")
SECURITY_HEADERS = {
    # no inline script or style: a page's scripts and styles are files under /static/
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Translate = Callable[..., str]


class MessagesInvalid(CtiError):
    code = "web.messages_invalid"


class MessageMissing(CtiError):
    code = "web.message_missing"


_catalogue: dict[str, dict[str, str]] = {}
_loader = jinja2.FileSystemLoader([str(CORE_TEMPLATES.resolve())])
_environment = jinja2.Environment(loader=_loader, autoescape=True, undefined=jinja2.StrictUndefined)


def register_messages(messages: Mapping[str, Mapping[str, str]]) -> None:
    """Adds texts; refuses (without adding any) a key missing a language or already defined differently."""
    errors = [f"{key}: missing {', '.join(lang for lang in LANGUAGES if not texts.get(lang))}"
              for key, texts in messages.items() if not all(texts.get(lang) for lang in LANGUAGES)]
    errors += [f"{key}: already defined with other texts" for key, texts in messages.items()
               if key in _catalogue and _catalogue[key] != dict(texts)]
    if errors:
        raise MessagesInvalid("; ".join(errors))
    _catalogue.update({key: dict(texts) for key, texts in messages.items()})


def catalogue() -> dict[str, dict[str, str]]:
    """A copy of every registered text."""
    return {key: dict(texts) for key, texts in _catalogue.items()}


def message(key: str, lang: str, **values: Any) -> str:
    """The text of ``key`` in ``lang`` (English if ``lang`` is not one of ours), ``{name}`` fields filled."""
    texts = _catalogue.get(key)
    if texts is None:
        raise MessageMissing(f"no message {key!r}")
    text = texts.get(lang) or texts[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text


def translator(lang: str) -> Translate:
    def t(key: str, **values: Any) -> str:
        return message(key, lang, **values)

    return t


def add_template_dir(directory: Path) -> None:
    """Templates are looked up in the core folder first, then in each added folder in order."""
    folder = str(Path(directory).resolve())
    if folder not in _loader.searchpath:
        _loader.searchpath.append(folder)


def environment() -> jinja2.Environment:
    """The one jinja2 environment of HTML pages: autoescaped, and an undefined variable is an error."""
    return _environment


def pick_language(request: web.Request, identity: Identity | None = None, default: str = DEFAULT_LANGUAGE) -> str:
    """``?lang=``, then the ``cti_lang`` cookie, the user's language, the browser's Accept-Language, ``default``."""
    for candidate in (request.query.get("lang"), request.cookies.get(LANG_COOKIE),
                      identity.language if identity else None):
        if candidate in LANGUAGES:
            return candidate
    accepted = accepted_languages(request.headers.get("Accept-Language", ""))
    return next((lang for lang in accepted if lang in LANGUAGES), default)


def accepted_languages(header: str) -> list[str]:
    """``fr-CH, fr;q=0.9, en;q=0.8`` -> ``["fr", "en"]``: primary tags by decreasing q, q=0 left out."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = _quality(params)
        if tag and quality > 0:
            weighted.append((-quality, position, tag.strip().split("-")[0].lower()))
    ordered = [tag for _, _, tag in sorted(weighted)]
    return list(dict.fromkeys(ordered))


def _quality(params: str) -> float:
    name, _, value = params.strip().partition("=")
    if name.strip() != "q":
        return 1.0
    try:
        return max(0.0, min(1.0, float(value)))
    except ValueError:
        return 0.0


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """An HTML page in the request's language; templates get ``t``, ``lang``, ``identity`` and ``csrf``."""
    identity = request.get(IDENTITY)
    lang = pick_language(request, identity)
    base = {"lang": lang, "t": translator(lang), "languages": LANGUAGES, "identity": identity,
            "csrf": identity.csrf if identity else None, "lang_urls": _language_urls(request)}
    html = _environment.get_template(template).render({**base, **context})
    response = web.Response(text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS)
    if request.query.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE, path="/", samesite="Lax",
                            httponly=True, secure=request.secure)
    return response


def _language_urls(request: web.Request) -> dict[str, str]:
    """This very page (query kept) in each language, for the language switch."""
    return {lang: str(request.rel_url.update_query(lang=lang)) for lang in LANGUAGES}


register_messages(MESSAGES)
