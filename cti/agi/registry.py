"""AGI scripts by name: ``agi://host:port/<name>`` in the dialplan runs the script registered as ``<name>``.

A script is a small module::

    from cti.agi import AgiSession, agi_script

    @agi_script("incoming")
    async def incoming(session: AgiSession) -> None:
        await session.answer()
        ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from cti.agi.errors import AgiScriptNotFound
from cti.agi.session import AgiSession

AgiScript = Callable[[AgiSession], Awaitable[None]]
ScriptT = TypeVar("ScriptT", bound=AgiScript)


class ScriptRegistry:
    """Maps script names to coroutine functions; names are compared without surrounding slashes."""

    def __init__(self) -> None:
        self._scripts: dict[str, AgiScript] = {}

    def register(self, name: str) -> Callable[[ScriptT], ScriptT]:
        """Decorator registering ``script`` under ``name``; a second, different script for a name is a bug."""
        key = _normalise(name)

        def decorator(script: ScriptT) -> ScriptT:
            existing = self._scripts.get(key)
            if existing is not None and existing is not script:
                raise ValueError(f"AGI script {key!r} is already registered ({existing!r})")
            self._scripts[key] = script
            return script

        return decorator

    def get(self, name: str) -> AgiScript:
        """The script for ``name``; raises :class:`AgiScriptNotFound`."""
        try:
            return self._scripts[name.strip("/")]
        except KeyError:
            raise AgiScriptNotFound(name) from None

    def names(self) -> list[str]:
        return sorted(self._scripts)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip("/") in self._scripts

    def __len__(self) -> int:
        return len(self._scripts)


def _normalise(name: str) -> str:
    key = name.strip("/")
    if not key or any(char.isspace() or char in "?#" for char in key):
        raise ValueError(f"invalid AGI script name {name!r}: use a URL path such as 'incoming' or 'ivr/main'")
    return key


scripts = ScriptRegistry()
"""The process-wide registry that ``@agi_script`` fills."""

agi_script = scripts.register
