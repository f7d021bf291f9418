"""Where the speech models live, and the admin commands around them (``cti models list|check|install``).

A model is a directory loaded with ``vosk.Model(model_path=...)``: ``transcription.models[lang]`` if set,
else ``transcription.models_dir/<lang>``. Nothing downloads at run time; ``install`` is an explicit admin
step for servers with internet access. It downloads into a work folder next to the target (same
filesystem), verifies the checksum, unpacks, loads the unpacked model, and only then renames it into
place, so a failed or interrupted install never leaves a half-written model where the server looks.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cti.settings import TranscriptionSettings
from tickets.transcription.errors import ModelBroken, ModelInstallError, ModelMissing, TranscriptionError

OFFICIAL = "https://alphacephei.com/vosk/models/"
DEFAULT_URLS = {
    "en": OFFICIAL + "vosk-model-small-en-us-0.15.zip",
    "fr": OFFICIAL + "vosk-model-small-fr-0.22.zip",
}
LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$")  # also keeps "../x" out of models_dir
URL_SCHEMES = ("https", "http", "file")
DOWNLOAD_TIMEOUT_S = 60.0  # per read, not for the whole download


# --- where models are ---------------------------------------------------------------------------


def model_dir_for(settings: TranscriptionSettings, language: str) -> Path:
    """The directory the server loads for ``language`` (explicit mapping first, then ``models_dir``)."""
    configured = settings.models.get(language)
    if configured is not None:
        return configured
    if not LANGUAGE.fullmatch(language):
        raise ModelMissing(language, settings.models_dir)
    return settings.models_dir / language


def is_installed(directory: Path) -> bool:
    """Vosk models keep their acoustic model in ``am/final.mdl`` (older ones: ``final.mdl`` at the top)."""
    return (directory / "am" / "final.mdl").is_file() or (directory / "final.mdl").is_file()


def require_model(settings: TranscriptionSettings, language: str) -> Path:
    """The model directory for ``language``, or ``ModelMissing`` naming where we looked."""
    directory = model_dir_for(settings, language)
    if not is_installed(directory):
        raise ModelMissing(language, directory)
    return directory


def configured_languages(settings: TranscriptionSettings) -> list[str]:
    """EN and FR (the languages callers can choose), explicit mappings, and folders found in ``models_dir``."""
    found = set(DEFAULT_URLS) | set(settings.models)
    if settings.models_dir.is_dir():
        found |= {p.name for p in settings.models_dir.iterdir() if p.is_dir() and LANGUAGE.fullmatch(p.name)}
    return sorted(found)


def check_language(settings: TranscriptionSettings, language: str) -> Path:
    """Load the model in this process and decode a second of silence; raises when missing or broken."""
    from tickets.transcription.engine import check_model

    directory = require_model(settings, language)
    check_model(str(directory))
    return directory


@dataclass(frozen=True)
class ModelStatus:
    language: str
    directory: Path
    present: bool
    loads: bool | None  # None: not tried (absent)
    detail: str = ""


def model_status(settings: TranscriptionSettings, language: str) -> ModelStatus:
    directory = model_dir_for(settings, language)
    if not is_installed(directory):
        return ModelStatus(language, directory, present=False, loads=None)
    try:
        check_language(settings, language)
    except TranscriptionError as exc:
        return ModelStatus(language, directory, present=True, loads=False, detail=str(exc))
    return ModelStatus(language, directory, present=True, loads=True)


# --- install ------------------------------------------------------------------------------------


def install(
    settings: TranscriptionSettings, language: str, url: str | None = None, sha256: str | None = None
) -> tuple[Path, str]:
    """Download, verify, unpack, check, then rename into place; returns (model directory, sha256 of the zip)."""
    url = url or DEFAULT_URLS.get(language)
    if url is None:
        raise ModelInstallError(f"no default download for {language!r}: pass --url (and --sha256)")
    target = model_dir_for(settings, language)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".install-{language}-", dir=target.parent))
    except OSError as exc:
        raise ModelInstallError(f"cannot write next to {target}: {exc}") from None
    try:
        digest = download(url, work / "model.zip")
        verify_checksum(digest, sha256)
        candidate = unpack(work / "model.zip", work / "unpacked")
        _check_candidate(candidate)
        swap_in(candidate, target)
    except OSError as exc:
        raise ModelInstallError(f"cannot install into {target}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, digest


def download(url: str, dest: Path) -> str:
    """Stream ``url`` into ``dest``; returns the SHA-256 of what was written."""
    if urllib.parse.urlsplit(url).scheme not in URL_SCHEMES:
        raise ModelInstallError(f"unsupported URL {url!r} (use one of: {', '.join(URL_SCHEMES)})")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, dest.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (OSError, ValueError) as exc:  # URLError and HTTPError are OSErrors
        raise ModelInstallError(f"download of {url} failed: {exc}") from None
    return digest.hexdigest()


def verify_checksum(actual: str, expected: str | None) -> None:
    if expected is not None and actual.lower() != expected.strip().lower():
        raise ModelInstallError(f"checksum mismatch: expected sha256 {expected}, downloaded file has {actual}")


def unpack(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` and return the model folder inside it."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            _refuse_unsafe_names(bundle.namelist())
            bundle.extractall(dest)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelInstallError(f"{archive.name} is not a usable zip archive: {exc}") from None
    return find_model_root(dest)


def _refuse_unsafe_names(names: list[str]) -> None:
    """zipfile sanitises names itself; refusing them outright tells the admin the archive is suspicious."""
    for name in names:
        if name.startswith(("/", "\\")) or ".." in PurePosixPath(name.replace("\\", "/")).parts:
            raise ModelInstallError(f"archive entry {name!r} points outside the model folder")


def find_model_root(folder: Path) -> Path:
    """Official zips hold one top folder (``vosk-model-small-en-us-0.15/``); a bare layout is accepted too."""
    if is_installed(folder):
        return folder
    roots = [child for child in sorted(folder.iterdir()) if child.is_dir() and is_installed(child)]
    if len(roots) != 1:
        raise ModelInstallError("the archive does not hold exactly one Vosk model (a folder with am/final.mdl)")
    return roots[0]


def _check_candidate(candidate: Path) -> None:
    from tickets.transcription.engine import check_model

    try:
        check_model(str(candidate))
    except ModelBroken as exc:
        raise ModelInstallError(f"the downloaded model does not load ({exc.detail})") from None


def swap_in(candidate: Path, target: Path) -> None:
    """Move ``candidate`` to ``target`` (same filesystem), replacing any previous model.

    Two renames: between them ``target`` is briefly absent, so a worker loading a model at that exact
    moment gets ModelBroken and its job is retried; workers that already loaded the old model keep it.
    """
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    had_old = target.exists() or target.is_symlink()
    if had_old:
        target.rename(old)
    try:
        candidate.rename(target)
    except OSError:
        if had_old:
            old.rename(target)
        raise
    if had_old:
        _remove(old)


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)


# --- the `cti models` command -------------------------------------------------------------------

Printer = Callable[[str], None]


def run_cli(settings: TranscriptionSettings, args: argparse.Namespace) -> int:
    """Entry point for ``cti models ACTION``; exit status 0 when everything asked for is usable."""
    actions: dict[str, Callable[[TranscriptionSettings, argparse.Namespace], int]] = {
        "list": _cli_list, "check": _cli_check, "install": _cli_install,
    }  # fmt: skip
    try:
        return actions[args.models_action](settings, args)
    except TranscriptionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _cli_list(settings: TranscriptionSettings, _args: argparse.Namespace) -> int:
    statuses = [model_status(settings, language) for language in configured_languages(settings)]
    print(format_statuses(statuses))
    return 0


def format_statuses(statuses: list[ModelStatus]) -> str:
    lines = [f"{'language':<9} {'present':<8} {'loads':<6} directory"]
    for status in statuses:
        loads = "-" if status.loads is None else ("yes" if status.loads else "NO")
        line = f"{status.language:<9} {'yes' if status.present else 'no':<8} {loads:<6} {status.directory}"
        lines.append(line + (f"\n          {status.detail}" if status.detail else ""))
    return "\n".join(lines)


def _cli_check(settings: TranscriptionSettings, args: argparse.Namespace) -> int:
    directory = check_language(settings, args.lang)
    print(f"model for {args.lang!r} OK: {directory} loads and decodes")
    return 0


def _cli_install(settings: TranscriptionSettings, args: argparse.Namespace) -> int:
    url = args.url or DEFAULT_URLS.get(args.lang, "")
    print(f"downloading {url or '(no default URL)'} ...")
    directory, digest = install(settings, args.lang, args.url, args.sha256)
    print(f"sha256 {digest}" + ("" if args.sha256 else " (not verified: pin it with --sha256 next time)"))
    print(f"model for {args.lang!r} installed in {directory}; it loads and decodes")
    return 0
