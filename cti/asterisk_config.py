"""Render Asterisk's configuration from the settings, so Asterisk and the server never disagree.

The templates are ``asterisk-config/templates/*.conf.j2`` in the source tree. They are found from the
package's own location (``<repo>/cti/../asterisk-config/templates``), which covers a checkout and an
editable install. An installed (wheel) ``cti`` looks in ``<sys.prefix>/share/cti/asterisk-config/templates``
instead, where a container image or a package copies them; ``templates_dir=`` overrides both.

SIP passwords are never stored: each one is an HMAC of the endpoint name keyed by one ``sip_secret``
(``settings.asterisk.sip_secret``), so the phones' configuration derives the same value with
:func:`sip_password`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from cti.errors import CtiError
from cti.resources import ResourceNotFound, resource_path
from cti.settings import Settings

TEMPLATE_SUFFIX = ".conf.j2"
TEMPLATES = "asterisk-config/templates"
SECRET_FILES = frozenset({"manager.conf", "pjsip.conf"})
CALLER_ENDPOINT = "caller"
AGENTS_CONTEXT = "cti-agents"
MAX_AGENTS = 999
PASSWORD_LENGTH = 32
# A ';' starts a comment and a line break ends the value: either would silently truncate a secret.
UNSAFE_CHARACTERS = frozenset(";\n\r\0")
SECTION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,79}$")


class AsteriskConfigError(CtiError):
    code = "asterisk_config.invalid"


@dataclass(frozen=True)
class Endpoint:
    """One PJSIP endpoint: its name doubles as the SIP user and the auth/aor section names."""

    name: str
    password: str
    context: str


def sip_password(sip_secret: str, endpoint: str) -> str:
    """The SIP password of ``endpoint``: hex HMAC-SHA256 keyed by ``sip_secret`` (32 characters)."""
    if not sip_secret:
        raise AsteriskConfigError(
            "the SIP secret is empty: set asterisk.sip_secret (CTI_ASTERISK__SIP_SECRET)"
        )
    digest = hmac.new(sip_secret.encode(), f"cti-sip:{endpoint}".encode(), hashlib.sha256)
    return digest.hexdigest()[:PASSWORD_LENGTH]


def agent_names(agents: int) -> list[str]:
    """``agent1`` .. ``agentN``: the agent endpoints, in the order they are rendered."""
    if not 0 <= agents <= MAX_AGENTS:
        raise AsteriskConfigError(f"agents must be between 0 and {MAX_AGENTS}, not {agents}")
    return [f"agent{number}" for number in range(1, agents + 1)]


def default_templates_dir() -> Path:
    """The source tree's templates if present (checkout, editable install), else the installed copy."""
    try:
        return resource_path(TEMPLATES)
    except ResourceNotFound as exc:
        raise AsteriskConfigError(f"Asterisk templates: {exc}; pass templates_dir") from None


def render_asterisk_config(
    settings: Settings,
    out_dir: Path,
    *,
    sip_secret: str,
    agents: int = 4,
    ami_permit: Sequence[str] = (),
    templates_dir: Path | None = None,
) -> list[Path]:
    """Write every ``*.conf`` into ``out_dir`` and return their paths, sorted.

    ``ami_permit`` adds networks (``10.0.0.0/8``) allowed to log in to AMI besides the loopback.
    Files holding secrets (``manager.conf``, ``pjsip.conf``) are written with mode 0600.
    """
    context = template_context(settings, sip_secret=sip_secret, agents=agents, ami_permit=ami_permit)
    environment = _environment(templates_dir or default_templates_dir())
    names = sorted(n for n in environment.list_templates() if n.endswith(TEMPLATE_SUFFIX))
    if not names:
        raise AsteriskConfigError(f"no *{TEMPLATE_SUFFIX} templates in {environment.loader}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        text = _render_one(environment, name, context)
        target = out_dir / name.removesuffix(".j2")
        _write_atomically(target, text, 0o600 if target.name in SECRET_FILES else 0o644)
        written.append(target)
    return written


def template_context(
    settings: Settings, *, sip_secret: str, agents: int = 4, ami_permit: Sequence[str] = ()
) -> dict[str, Any]:
    """Everything the templates may use; every value is checked before it reaches a template."""
    ami, agi, asterisk = settings.ami, settings.agi, settings.asterisk
    trunk = Endpoint(CALLER_ENDPOINT, sip_password(sip_secret, CALLER_ENDPOINT), asterisk.inbound_context)
    endpoints = [trunk, *(Endpoint(n, sip_password(sip_secret, n), AGENTS_CONTEXT) for n in agent_names(agents))]
    context: dict[str, Any] = {
        "ami_username": _section_name(ami.username, "ami.username"),
        "ami_secret": ami.secret.get_secret_value(),
        "ami_bind": _ip_address(ami.host, "ami.host"),
        "ami_port": ami.port,
        "ami_permit": _networks(["127.0.0.1/32", *ami_permit]),
        "agi_url": f"agi://{agi.advertised_host}:{agi.port}",
        "inbound_context": _section_name(asterisk.inbound_context, "asterisk.inbound_context"),
        "agents_context": AGENTS_CONTEXT,
        "trunk": CALLER_ENDPOINT,
        "sip_bind": asterisk.sip_bind,
        "language": asterisk.default_language,
        "media_dir": str(settings.paths.media_dir),
        "endpoints": endpoints,
        "agents": [e for e in endpoints if e.context == AGENTS_CONTEXT],
    }
    _check_values(context)
    return context


def _environment(templates_dir: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Asterisk config, not HTML: values are checked by _check_values instead
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render_one(environment: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        return environment.get_template(name).render(context)
    except jinja2.UndefinedError as exc:
        raise AsteriskConfigError(f"template {name}: {exc.message}") from None


def _write_atomically(target: Path, text: str, mode: int) -> None:
    """Asterisk may be reloading while we write: it must see the old file or the new one, never half."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _ip_address(value: str, key: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise AsteriskConfigError(f"{key} must be an IP address Asterisk can bind, not {value!r}") from None


def _section_name(value: str, key: str) -> str:
    """Names that become ``[sections]`` (AMI user, dialplan context): letters, digits, '_', '-', '.'."""
    if not SECTION_NAME.fullmatch(value):
        raise AsteriskConfigError(f"{key} {value!r} cannot name an Asterisk section (letters, digits, _ - .)")
    return value


def _networks(values: Iterable[str]) -> list[str]:
    """``10.0.0.0/8`` becomes ``10.0.0.0/255.0.0.0``, the form Asterisk's permit= lines use."""
    networks = []
    for value in values:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise AsteriskConfigError(f"AMI permit {value!r} is not a network (e.g. 10.0.0.0/8)") from None
        text = f"{network.network_address}/{network.netmask}" if network.version == 4 else str(network)
        if text not in networks:
            networks.append(text)
    return networks


def _check_values(context: Mapping[str, Any]) -> None:
    if not context["ami_secret"]:
        raise AsteriskConfigError("ami.secret is empty: set it in the config file or CTI_AMI__SECRET")
    for key, value in context.items():
        if isinstance(value, str) and (UNSAFE_CHARACTERS & set(value) or value != value.strip()):
            raise AsteriskConfigError(f"{key} holds a character Asterisk config cannot carry (';', newline)")
