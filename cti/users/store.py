"""Reads and writes user accounts; the one place that checks a username, a role or a password.

Every method is one transaction. Password hashes never leave this module: callers get :class:`User`.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cti.db import Database
from cti.db.base import utcnow
from cti.errors import CtiError, InvalidInput
from cti.users.models import LANGUAGES, ROLES, UserRow
from cti.users.passwords import PasswordRejected, check_policy, hash_password_async, verify_password_async

USERNAME = re.compile(r"^[a-z0-9._-]{2,64}$")
AGENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MAX_DISPLAY_NAME = 80
UPDATABLE = ("display_name", "role", "agent_id", "language", "active")


class UserNotFound(CtiError):
    code = "users.not_found"


class UserExists(CtiError):
    """The username, or the ACD agent id, already belongs to another user."""

    code = "users.exists"


class UserInvalid(InvalidInput):
    """Every reason a user (or a change to one) was refused, each naming the field."""

    code = "users.invalid"


class _Unset:
    """Marks a field ``update`` leaves alone (None is a value: "no agent", "no language")."""


UNSET: Final = _Unset()


@dataclass(frozen=True)
class User:
    """A user as the rest of the server sees it: never with its password hash."""

    id: int
    username: str
    display_name: str
    role: str
    agent_id: str | None
    language: str | None
    active: bool
    created_at: datetime
    password_changed_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
            "agent_id": self.agent_id, "language": self.language, "active": self.active,
            "created_at": self.created_at.isoformat(), "password_changed_at": self.password_changed_at.isoformat(),
        }


def normalise_username(username: str) -> str:
    """Usernames are compared lowercase, so ``Alice`` and ``alice`` are one account."""
    return username.strip().lower()


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, username: str, password: str, role: str, *, display_name: str | None = None,
        agent_id: str | None = None, language: str | None = None, active: bool = True,
    ) -> User:
        """Raises UserInvalid (every reason at once, the password policy's included) or UserExists."""
        name = normalise_username(username) if isinstance(username, str) else username
        fields = _blank_to_none({"display_name": display_name or name, "role": role, "agent_id": agent_id,
                                 "language": language, "active": active})
        errors = _check_username(name) + _check_fields(fields) + _check_password(password)
        if errors:
            raise UserInvalid(errors)
        row = UserRow(username=name, password_hash=await hash_password_async(password), **fields)
        try:
            async with self.db.session() as session:
                await _refuse_taken(session, name, fields["agent_id"], None)
                session.add(row)
        except IntegrityError:  # a concurrent create won the race the check above could not see
            raise UserExists(f"the username {name!r} or the agent {fields['agent_id']!r} is already taken") from None
        return _user(row)

    async def get(self, user_id: int) -> User:
        async with self.db.session() as session:
            return _user(await _row(session, user_id))

    async def by_username(self, username: str) -> User:
        async with self.db.session() as session:
            row = await _row_by_name(session, normalise_username(username))
        if row is None:
            raise UserNotFound(f"no user {username!r}")
        return _user(row)

    async def list(self) -> builtins.list[User]:
        async with self.db.session() as session:
            return [_user(row) for row in await session.scalars(select(UserRow).order_by(UserRow.username))]

    async def update(
        self, user_id: int, *, display_name: str | _Unset = UNSET, role: str | _Unset = UNSET,
        agent_id: str | _Unset | None = UNSET, language: str | _Unset | None = UNSET, active: bool | _Unset = UNSET,
    ) -> User:
        """Changes only the fields given; ``agent_id=None`` (or "") unlinks the ACD agent."""
        given = {"display_name": display_name, "role": role, "agent_id": agent_id, "language": language,
                 "active": active}
        changes = _blank_to_none({key: value for key, value in given.items() if not isinstance(value, _Unset)})
        errors = _check_fields(changes)
        if errors:
            raise UserInvalid(errors)
        try:
            async with self.db.session() as session:
                row = await _row(session, user_id)
                await _refuse_taken(session, None, changes.get("agent_id"), user_id)
                for key, value in changes.items():
                    setattr(row, key, value)
        except IntegrityError:
            raise UserExists(f"the agent {changes.get('agent_id')!r} is already another user") from None
        return _user(row)

    async def set_password(self, user_id: int, password: str) -> User:
        errors = _check_password(password)
        if errors:
            raise UserInvalid(errors)
        password_hash = await hash_password_async(password)
        async with self.db.session() as session:
            row = await _row(session, user_id)
            row.password_hash, row.password_changed_at = password_hash, utcnow()
        return _user(row)

    async def delete(self, user_id: int) -> None:
        async with self.db.session() as session:
            await session.delete(await _row(session, user_id))

    async def authenticate(self, username: str, password: str) -> User | None:
        """The user when the password matches an active account, else None: the caller cannot tell an
        unknown username from a wrong password, nor by the time it takes (a dummy hash is verified)."""
        async with self.db.session() as session:
            row = await _row_by_name(session, normalise_username(username))
        stored = row.password_hash if row is not None else None
        if not await verify_password_async(password, stored) or row is None or not row.active:
            return None
        return _user(row)


async def _row(session: AsyncSession, user_id: int) -> UserRow:
    row = await session.get(UserRow, user_id)
    if row is None:
        raise UserNotFound(f"no user {user_id}")
    return row


async def _row_by_name(session: AsyncSession, username: str) -> UserRow | None:
    found: UserRow | None = await session.scalar(select(UserRow).where(UserRow.username == username))
    return found


async def _refuse_taken(session: AsyncSession, username: str | None, agent_id: str | None, own_id: int | None) -> None:
    """Clear refusals for the usual case; the unique constraints still catch a concurrent write."""
    if username is not None and await _row_by_name(session, username) is not None:
        raise UserExists(f"the username {username!r} is already taken")
    if agent_id is None:
        return
    holder = await session.scalar(select(UserRow).where(UserRow.agent_id == agent_id))
    if holder is not None and holder.id != own_id:
        raise UserExists(f"the agent {agent_id!r} is already the user {holder.username!r}")


def _check_username(username: str) -> list[str]:
    if isinstance(username, str) and USERNAME.fullmatch(username):
        return []
    return ["username: 2 to 64 characters among a-z, 0-9, '.', '_' and '-'"]


def _blank_to_none(fields: dict[str, Any]) -> dict[str, Any]:
    """An empty agent id or language means none (what an HTML form or a shell sends)."""
    return {key: None if key in ("agent_id", "language") and value == "" else value for key, value in fields.items()}


def _check_fields(fields: dict[str, Any]) -> list[str]:
    """Types are checked too: the values may come straight from a JSON body."""
    errors = []
    name = fields.get("display_name")
    if "display_name" in fields and not (isinstance(name, str) and 1 <= len(name.strip()) <= MAX_DISPLAY_NAME):
        errors.append(f"display_name: 1 to {MAX_DISPLAY_NAME} characters")
    if "role" in fields and fields["role"] not in ROLES:
        errors.append(f"role: one of {', '.join(ROLES)}, not {fields['role']!r}")
    agent = fields.get("agent_id")
    if agent is not None and not (isinstance(agent, str) and AGENT_ID.fullmatch(agent)):
        errors.append("agent_id: 1 to 32 characters among letters, digits, '.', '_' and '-'")
    if fields.get("language") is not None and fields["language"] not in LANGUAGES:
        errors.append(f"language: one of {', '.join(LANGUAGES)}, or none")
    if "active" in fields and not isinstance(fields["active"], bool):
        errors.append("active: true or false")
    return errors


def _check_password(password: str) -> list[str]:
    if not isinstance(password, str):
        return ["password: a string"]
    try:
        check_policy(password)
    except PasswordRejected as exc:
        return [f"password: {exc}"]
    return []


def _user(row: UserRow) -> User:
    return User(row.id, row.username, row.display_name, row.role, row.agent_id, row.language, row.active,
                row.created_at, row.password_changed_at)
