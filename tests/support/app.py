"""Settings for a composed server under test: a scripted AMI peer, free ports, a private SQLite file."""

from __future__ import annotations

from pathlib import Path

from cti.settings import Settings, load_settings
from tests.fakes.ami_peer import AmiPeer


def app_settings(tmp_path: Path, ami_port: int, db_url: str | None = None, **extra: str) -> Settings:
    """``extra``: more ``CTI_<SECTION>__<KEY>`` variables (tokens, transcription...)."""
    env = {
        "CTI_AMI__PORT": str(ami_port), "CTI_AMI__SECRET": AmiPeer.secret, "CTI_AGI__PORT": "0",
        "CTI_HTTP__PORT": "0", "CTI_PATHS__MEDIA_DIR": str(tmp_path / "media"),
        "CTI_DATABASE__URL": db_url or f"sqlite+aiosqlite:///{tmp_path}/cti.sqlite3",
        **extra,
    }
    return load_settings(environ=env)
