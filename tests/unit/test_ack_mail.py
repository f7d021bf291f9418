"""Acknowledgement e-mails through a REAL local SMTP server (aiosmtpd on 127.0.0.1, a free port)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select

from cti.db import Database
from cti.settings import SmtpSettings, TicketSettings
from tickets.models import Ticket, TicketEvent
from tickets.service import TicketService, as_utc
from tickets.types import NewTicket
from tickets.voicemail.mail import AckMailer


class Inbox:
    """An aiosmtpd handler keeping what arrives (and who logged in)."""

    def __init__(self) -> None:
        self.port = 0
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=True)


async def _serve(inbox: Inbox, **options: Any) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox, loop=loop, **options), "127.0.0.1", 0)
    inbox.port = server.sockets[0].getsockname()[1]
    return server


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = Inbox()
    server = await _serve(box, authenticator=box.authenticate, auth_require_tls=False)
    yield box
    server.close()
    await server.wait_closed()


@pytest.fixture
def service(database: Database) -> TicketService:
    return TicketService(database, TicketSettings())


async def _ticket(service: TicketService, **fields: Any) -> Ticket:
    values = {"subject": "printer broken", "source": "voicemail", "caller_email": "alice@example.org",
              "caller_name": "Alice Martin", "contract_level": "gold", **fields}
    return await service.create(NewTicket(**values))


async def _email_events(database: Database, ticket: Ticket) -> list[str]:
    async with database.session() as session:
        events = await session.scalars(select(TicketEvent.body).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "email"))
        return list(events)


def _smtp(port: int, **overrides: Any) -> SmtpSettings:
    return SmtpSettings(**{"enabled": True, "host": "127.0.0.1", "port": port, "sender": "helpdesk@example.com",
                           "timeout_s": 5.0, **overrides})


async def test_english_acknowledgement_arrives_with_reference_and_call_back_time(
    inbox: Inbox, service: TicketService, database: Database,
) -> None:
    ticket = await _ticket(service)
    assert await AckMailer(_smtp(inbox.port), service).send_ack(ticket) is True

    [message] = inbox.messages
    assert inbox.recipients == [["alice@example.org"]]
    assert message["Subject"] == f"[{ticket.reference}] We received your voicemail message"
    assert message["From"] == "helpdesk@example.com"
    body = message.get_content()
    assert body.startswith("Hello Alice Martin,")
    assert f"opened request {ticket.reference}" in body
    assert ticket.response_due_at is not None
    assert f"call you back by {as_utc(ticket.response_due_at):%Y-%m-%d %H:%M} UTC" in body
    assert await _email_events(database, ticket) == [f"acknowledgement sent to alice@example.org: {message['Subject']}"]


async def test_french_acknowledgement(inbox: Inbox, service: TicketService) -> None:
    ticket = await _ticket(service, language="fr", source="abandoned_call", caller_name="")
    assert await AckMailer(_smtp(inbox.port), service).send_ack(ticket) is True
    [message] = inbox.messages
    assert message["Subject"] == f"[{ticket.reference}] Nous avons bien reçu votre appel"
    body = message.get_content()
    assert body.startswith("Bonjour,")
    assert f"ouvert la demande {ticket.reference}" in body and "Nous vous rappellerons au plus tard le" in body


@pytest.mark.parametrize(("enabled", "address"), [(False, "alice@example.org"), (True, "")])
async def test_nothing_is_sent_when_disabled_or_without_an_address(
    inbox: Inbox, service: TicketService, database: Database, enabled: bool, address: str,
) -> None:
    ticket = await _ticket(service, caller_email=address)
    assert await AckMailer(_smtp(inbox.port, enabled=enabled), service).send_ack(ticket) is False
    assert inbox.messages == [] and await _email_events(database, ticket) == []


async def test_an_address_that_could_inject_headers_is_refused(
    inbox: Inbox, service: TicketService, database: Database,
) -> None:
    ticket = await _ticket(service, caller_email="alice@example.org\nBcc: all@example.org")
    assert await AckMailer(_smtp(inbox.port), service).send_ack(ticket) is False
    assert inbox.messages == []
    [note] = await _email_events(database, ticket)
    assert "not an e-mail address" in note


async def test_login_when_credentials_are_configured(inbox: Inbox, service: TicketService) -> None:
    ticket = await _ticket(service)
    settings = _smtp(inbox.port, username="helpdesk", password="s3cret")
    assert await AckMailer(settings, service).send_ack(ticket) is True
    assert inbox.logins == [(b"helpdesk", b"s3cret")]
    assert len(inbox.messages) == 1


async def test_unreachable_server_is_noted_not_raised(service: TicketService, database: Database) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ticket = await _ticket(service)
    assert await AckMailer(_smtp(port), service).send_ack(ticket) is False
    [note] = await _email_events(database, ticket)
    assert note.startswith("acknowledgement to alice@example.org not sent:")


def _self_signed(folder: Path) -> ssl.SSLContext:
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_starttls_refuses_a_server_it_cannot_verify(
    tmp_path: Path, service: TicketService, database: Database,
) -> None:
    box = Inbox()
    server = await _serve(box, tls_context=_self_signed(tmp_path), require_starttls=True)
    try:
        ticket = await _ticket(service)
        assert await AckMailer(_smtp(box.port, starttls=True), service).send_ack(ticket) is False
    finally:
        server.close()
        await server.wait_closed()
    assert box.messages == []
    [note] = await _email_events(database, ticket)
    assert "CERTIFICATE_VERIFY_FAILED" in note


async def test_templates_render_without_a_database() -> None:
    ticket = Ticket(id=7, reference=None, subject="x", source="web", caller_name="", caller_email="a@b.c",
                    language="de", response_due_at=None)
    ticket.created_at = datetime(2026, 1, 2, 3, 4)
    message = AckMailer(_smtp(25)).compose(ticket)
    assert message["Subject"] == "[#7] We received your request"
    assert "We will call you back as soon as possible." in message.get_content()
