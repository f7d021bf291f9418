"""Data files shipped beside the package (Asterisk templates, the prompt catalogue).

In a checkout or an editable install they are read from the source tree; an installed copy (the
Docker image) carries them in ``<sys.prefix>/share/cti/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cti.errors import CtiError

SOURCE_ROOT = Path(__file__).resolve().parent.parent
INSTALLED_ROOT = Path(sys.prefix) / "share" / "cti"


class ResourceNotFound(CtiError):
    code = "resources.not_found"


def resource_path(relative: str) -> Path:
    """``resource_path("prompts/catalog.toml")``: the first of the source tree and the installed copy."""
    candidates = (SOURCE_ROOT / relative, INSTALLED_ROOT / relative)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise ResourceNotFound(f"{relative} not found in {candidates[0]} or {candidates[1]}")
