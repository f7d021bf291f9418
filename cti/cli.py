"""The ``cti`` command: serve, db upgrade, demo, check-config, asterisk-config, prompts build, models, ivr, acd,
users."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from cti.acd import cli as acd_cli
from cti.contacts import cli as contacts_cli
from cti.ivr import cli as ivr_cli
from cti.settings import CONFIG_ENV, Settings, SettingsError, load_settings
from cti.users import cli as users_cli

DEMO_PASSWORD_ENV = "CTI_DEMO_PASSWORD"
log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    result: int = args.run(settings, args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cti", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, help="TOML settings file (default: $CTI_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the server").set_defaults(run=_serve)
    db = commands.add_parser("db", help="database").add_subparsers(required=True, metavar="ACTION")
    db.add_parser("upgrade", help="apply migrations").set_defaults(run=_db_upgrade)
    commands.add_parser("demo", help="migrate, seed demo data, build prompts").set_defaults(run=_demo)
    commands.add_parser("check-config", help="validate settings and paths").set_defaults(run=_check_config)
    render = commands.add_parser("asterisk-config", help="render Asterisk's configuration")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--agents", type=int, default=4)
    render.set_defaults(run=_asterisk_config)
    prompts = commands.add_parser("prompts", help="voice prompts").add_subparsers(required=True, metavar="ACTION")
    build = prompts.add_parser("build", help="speak missing placeholder prompts with espeak-ng")
    build.add_argument("--force", action="store_true")
    build.set_defaults(run=_prompts_build)
    _add_models_commands(commands)
    ivr_cli.add_commands(commands)
    acd_cli.add_commands(commands)
    contacts_cli.add_commands(commands)
    users_cli.add_commands(commands)
    return parser


def _add_models_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``cti models list|check|install``: the Vosk models voicemail transcription loads (docs/VOICEMAIL.md)."""
    models = commands.add_parser("models", help="speech models for voicemail transcription")
    actions = models.add_subparsers(required=True, metavar="ACTION", dest="models_action")
    actions.add_parser("list", help="each language: model directory, present, loads").set_defaults(run=_models)
    check = actions.add_parser("check", help="load a model and decode a second of silence")
    check.add_argument("--lang", required=True)
    check.set_defaults(run=_models)
    install = actions.add_parser("install", help="download, verify, unpack and check a model (needs internet)")
    install.add_argument("--lang", required=True)
    install.add_argument("--url", help="zip to download (default: the official small model for en/fr)")
    install.add_argument("--sha256", help="expected SHA-256 of the zip; the install stops if it differs")
    install.set_defaults(run=_models)


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from cti.allocator import limit_malloc_arenas, pin_mmap_threshold, trim_free_memory_every
    from cti.app import build_app
    from cti.collector import freeze_startup_objects

    limit_malloc_arenas(settings.process.malloc_arenas)  # before any thread starts (the driver's, the executor's)
    pin_mmap_threshold(settings.process.malloc_mmap_threshold_kib)

    async def run() -> None:
        app = build_app(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await app.start()
        if settings.process.gc_freeze:
            log.info("%d objects kept for the process's life frozen out of the collector's reach",
                     freeze_startup_objects())
            app.collector.reset()  # from now on the pauses counted are the calls'
        trimming = asyncio.create_task(trim_free_memory_every(settings.process.malloc_trim_every_s))
        await stop.wait()
        trimming.cancel()
        await app.stop()

    asyncio.run(run())
    return 0


def _db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from cti.db.migrate import upgrade

    upgrade(settings.database)
    print("database at head")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from cti.demo import seed_acd_demo, seed_demo

    _db_upgrade(settings, args)
    print(f"demo data: {ivr_cli.with_ivr(settings, seed_demo)} service numbers imported")
    print(f"demo data: {acd_cli.with_store(settings, seed_acd_demo)} ACD agents imported")
    contacts_cli.seed_demo(settings)
    if not _demo_logins(settings, args):
        return 1
    args.force = False
    return _prompts_build(settings, args)


def _demo_logins(settings: Settings, args: argparse.Namespace) -> bool:
    """Logins for a supervisor and each demo agent; one password, from $CTI_DEMO_PASSWORD or generated once
    and kept in ``demo-logins.txt`` beside the configuration file (written before any user is created)."""
    from cti.demo import DEMO_LOGINS_FILE, demo_logins, demo_password, seed_demo_logins, write_demo_logins
    from cti.users.store import UserInvalid

    config = args.config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    logins_file = (config.parent if config else Path("var")) / DEMO_LOGINS_FILE
    told: list[str] = []

    def password() -> str:
        secret, generated = demo_password(logins_file, os.environ.get(DEMO_PASSWORD_ENV))
        if generated:
            write_demo_logins(logins_file, secret, demo_logins())
            told.append(f"{secret} (written in {logins_file})")
        else:
            told.append(f"${DEMO_PASSWORD_ENV}" if os.environ.get(DEMO_PASSWORD_ENV) else f"in {logins_file}")
        return secret

    try:
        created = users_cli.with_users(settings, lambda users: seed_demo_logins(users, password))
    except UserInvalid as exc:
        print(f"demo logins refused (${DEMO_PASSWORD_ENV}?):", *exc.errors, sep="\n  ", file=sys.stderr)
        return False
    print(f"demo data: {len(created)} logins created", *(login.describe() for login in created), sep="\n  ")
    if told:
        print(f"demo logins: the password of every demo user is {told[0]}")
    return True


def _check_config(settings: Settings, _args: argparse.Namespace) -> int:
    from cti.checks import check_settings

    problems = check_settings(settings)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if not problems:
        print("configuration OK")
    return 1 if problems else 0


def _asterisk_config(settings: Settings, args: argparse.Namespace) -> int:
    from cti.asterisk_config import render_asterisk_config

    secret = settings.asterisk.sip_secret.get_secret_value()
    for path in render_asterisk_config(settings, args.out, sip_secret=secret, agents=args.agents):
        print(path)
    return 0


def _prompts_build(settings: Settings, args: argparse.Namespace) -> int:
    from cti.prompts import PromptStore, build_placeholders, load_catalog

    written = build_placeholders(PromptStore(settings.paths.prompts_dir), load_catalog(), force=args.force)
    print(f"prompts: {written} written in {settings.paths.prompts_dir}")
    return 0


def _models(settings: Settings, args: argparse.Namespace) -> int:
    from tickets.transcription.models import run_cli

    return run_cli(settings.transcription, args)
