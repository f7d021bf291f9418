"""``cti check-config``: what an admin should fix before starting the server, in plain words."""

from __future__ import annotations

import os
import time

from cti.http.app import expired_tokens
from cti.prompts import PromptStore, load_catalog
from cti.settings import Settings


def check_settings(settings: Settings) -> list[str]:
    problems: list[str] = []
    if not settings.ami.secret.get_secret_value():
        problems.append("ami.secret is empty: set it in the config file or CTI_AMI__SECRET")
    if not settings.security.api_tokens:
        problems.append("security.api_tokens is empty: no one could use the HTTP API")
    problems.extend(f"security.api_tokens: {line}" for line in expired_tokens(settings.security, time.time()))
    media = settings.paths.media_dir
    if not media.is_dir():
        problems.append(f"paths.media_dir {media} does not exist")
    elif not os.access(media, os.W_OK):
        problems.append(f"paths.media_dir {media} is not writable")
    else:
        problems.extend(_missing_prompts(PromptStore(settings.paths.prompts_dir)))
    return problems


def _missing_prompts(store: PromptStore) -> list[str]:
    missing = [f"{lang}/{name}" for name in load_catalog() for lang in ("en", "fr")
               if not store.exists(lang, name)]
    if not missing:
        return []
    return [f"{len(missing)} prompts missing in {store.root} (first: {missing[0]}); run 'cti prompts build'"]
