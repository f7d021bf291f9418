"""``cti users add|passwd|list``: accounts from a shell, for the first admin and for scripts.

A password is read from standard input (one line), never from an argument: arguments show in ``ps`` and in
the shell's history. At a terminal it is asked for without echo. These write straight to the database;
``passwd`` also ends the user's sessions when the shared state is Redis (an in-process state belongs to the
server process, which a shell cannot reach).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO, TypeVar

from cti.db import run_with_database
from cti.settings import Settings
from cti.state import StateError, make_state_backend
from cti.users.models import LANGUAGES, ROLES
from cti.users.sessions import SessionStore
from cti.users.store import User, UserExists, UserInvalid, UserNotFound, UserStore

T = TypeVar("T")
REFUSED = (UserInvalid, UserExists, UserNotFound)


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    actions = commands.add_parser("users", help="logins: admins, supervisors, agents").add_subparsers(
        required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create a user; the password is read from stdin (one line)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent", dest="agent_id", help="the ACD agent id this user is")
    add.add_argument("--name", dest="display_name", help="display name (default: the username)")
    add.add_argument("--language", choices=LANGUAGES)
    add.set_defaults(run=run_add)
    passwd = actions.add_parser("passwd", help="set a user's password, read from stdin (one line)")
    passwd.add_argument("username")
    passwd.set_defaults(run=run_passwd)
    actions.add_parser("list", help="every user, without passwords").set_defaults(run=run_list)


def with_users(settings: Settings, work: Callable[[UserStore], Awaitable[T]]) -> T:
    """Runs ``work`` with a user store on the configured database, closed afterwards."""
    return run_with_database(settings.database, lambda db: work(UserStore(db)))


def read_password(stream: TextIO | None = None) -> str:
    """One line from stdin without its line ending; at a terminal, asked twice without echo."""
    source = stream or sys.stdin
    if stream is None and source.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise UserInvalid(["password: the two entries differ"])
        return first
    return source.readline().removesuffix("\n").removesuffix("\r")


def run_add(settings: Settings, args: argparse.Namespace) -> int:
    password = read_password()

    async def work(store: UserStore) -> User:
        return await store.create(args.username, password, args.role, display_name=args.display_name,
                                  agent_id=args.agent_id, language=args.language)

    return _report(settings, work, lambda user: f"user {user.username} created ({_describe(user)})")


def run_passwd(settings: Settings, args: argparse.Namespace) -> int:
    password = read_password()

    async def work(store: UserStore) -> User:
        user = await store.set_password((await store.by_username(args.username)).id, password)
        await _end_sessions(settings, user)
        return user

    return _report(settings, work, lambda user: f"user {user.username}: password changed")


def run_list(settings: Settings, _args: argparse.Namespace) -> int:
    users = with_users(settings, UserStore.list)
    for user in users:
        print(f"{user.username:<24} {_describe(user)}{'' if user.active else '  (inactive)'}")
    if not users:
        print("no users yet: cti users add NAME --role admin < password-file")
    return 0


def _report(settings: Settings, work: Callable[[UserStore], Awaitable[User]], done: Callable[[User], str]) -> int:
    try:
        user = with_users(settings, work)
    except REFUSED as exc:
        reasons = getattr(exc, "errors", [str(exc)])
        print("refused:", *(f"  - {reason}" for reason in reasons), sep="\n", file=sys.stderr)
        return 1
    print(done(user))
    return 0


def _describe(user: User) -> str:
    parts = [user.role, f"agent {user.agent_id}" if user.agent_id else "", user.language or "", user.display_name]
    return ", ".join(part for part in parts if part)


async def _end_sessions(settings: Settings, user: User) -> None:
    if settings.state.backend != "redis":
        return
    state = make_state_backend(settings.state)
    try:
        await SessionStore(state, settings.security.session_ttl_s).delete_for_user(user.id)
    except StateError as exc:
        print(f"warning: sessions of {user.username} not ended (shared state: {exc})", file=sys.stderr)
    finally:
        await state.close()
