"""Where a CLI export goes: to a file (and say so) or, without one, to standard output."""

from __future__ import annotations

import sys
from pathlib import Path


def write_export(text: str, file: Path | None, done: str) -> int:
    """Print ``text``, or write it to ``file`` and print ``done``; exit status 1 with the reason if it cannot."""
    if file is None:
        print(text, end="")
        return 0
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"{file}: cannot write it ({exc.strerror or exc})", file=sys.stderr)
        return 1
    print(f"{file}: {done}")
    return 0
