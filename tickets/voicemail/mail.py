"""Acknowledgement e-mail to the caller: "we have your message, reference HD-000042, we call back by ...".

Sent only when SMTP is enabled and the ticket has the caller's address (there is no contacts table yet,
so most voicemail tickets have none). smtplib blocks, so it runs in a thread. The outcome, sent or not,
is written to the ticket's history (event ``email``) so an agent knows whether the caller was told.
Templates: ``tickets/templates/ack_email_<lang>.txt.j2``, first line ``Subject: ...``, then the body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import jinja2

from cti.settings import SmtpSettings
from tickets.models import Ticket
from tickets.service import as_utc
from tickets.voicemail.ports import EventRecorder

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LANGUAGES = ("en", "fr")
EMAIL_EVENT = "email"
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")
_SUBJECT = "Subject:"


class AckMailer:
    """``send_ack(ticket)`` -> True when an e-mail left; it never raises for SMTP trouble (logged, noted)."""

    def __init__(self, settings: SmtpSettings, events: EventRecorder | None = None,
                 templates_dir: Path = TEMPLATES) -> None:
        self.settings, self.events = settings, events
        self._templates = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir), autoescape=False,
                                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

    async def send_ack(self, ticket: Ticket) -> bool:
        address = ticket.caller_email.strip()
        if not self.settings.enabled or not address:
            return False
        if not _ADDRESS.fullmatch(address):
            await self._note(ticket, f"acknowledgement not sent: {address!r} is not an e-mail address")
            return False
        message = self.compose(ticket)
        try:
            await asyncio.to_thread(self._send, message)
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("acknowledgement for %s to %s failed: %s", ticket.reference, address, exc)
            await self._note(ticket, f"acknowledgement to {address} not sent: {exc}")
            return False
        await self._note(ticket, f"acknowledgement sent to {address}: {message['Subject']}")
        return True

    def compose(self, ticket: Ticket) -> EmailMessage:
        """The message in the ticket's language (English when we have no template for it)."""
        language = ticket.language if ticket.language in LANGUAGES else "en"
        text = self._templates.get_template(f"ack_email_{language}.txt.j2").render(**_context(ticket))
        subject, body = _split(text)
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = ticket.caller_email.strip()
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2] or None)
        message.set_content(body)
        return message

    def _send(self, message: EmailMessage) -> None:
        settings = self.settings
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
            if settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password.get_secret_value())
            smtp.send_message(message)

    async def _note(self, ticket: Ticket, body: str) -> None:
        if self.events is None:
            return
        try:
            await self.events.add_event(ticket.id, EMAIL_EVENT, body)
        except Exception:  # the history note is a courtesy; the e-mail's fate is already decided
            log.exception("could not record the e-mail event on ticket %s", ticket.reference)


def _context(ticket: Ticket) -> dict[str, Any]:
    return {"reference": ticket.reference or f"#{ticket.id}", "source": ticket.source,
            "caller_name": ticket.caller_name, "received": _when(ticket.created_at),
            "callback_by": _when(ticket.response_due_at) if ticket.response_due_at else None}


def _when(value: datetime) -> str:
    """UTC, said so."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def _split(text: str) -> tuple[str, str]:
    first, _, body = text.lstrip("\n").partition("\n")
    if not first.startswith(_SUBJECT):
        raise ValueError(f"acknowledgement template must start with {_SUBJECT!r}, got {first[:60]!r}")
    return first[len(_SUBJECT):].strip(), body.lstrip("\n")
