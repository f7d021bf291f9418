"""Secrets come from the configuration file or the environment, never from the code (docs/DEVELOPING.md).

The shipped source (``cti/``, ``tickets/``: code, templates, scripts) is scanned for
- a literal string of 16 characters or more given to a name that says secret, password, token or key
  (assignment, keyword argument, default value, dictionary entry, ``SecretStr("...")``);
- a URL carrying a user and password (``postgresql://user:pass@host``, ``redis://:pass@host``);
- an AMI login with a literal secret (``"Secret": "..."``, ``Secret: ...`` in a text).
Test fixtures (``tests/``: the scripted AMI peer's password, the test databases' URLs) are not shipped, so not
scanned. The scanner itself is checked on samples, so a broken scanner cannot pass silently.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "cti", ROOT / "tickets")
TEXT_SUFFIXES = {".py", ".html", ".js", ".css", ".j2", ".mako", ".txt", ".toml", ".yaml", ".yml", ".conf", ".sh"}
SECRET_NAME = re.compile(r"secret|passw|token|api_?key|private_?key|signing_?key|(^|_)key$", re.IGNORECASE)
MIN_LENGTH = 16
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]*:[^/\s@'\"{}]+@", re.IGNORECASE)
AMI_SECRET_LINE = re.compile(r"^\s*secret\s*[:=]\s*(?P<value>[^\s{}<>'\"]{4,})\s*$", re.IGNORECASE | re.MULTILINE)
# Found on purpose: (file relative to the repository, what). Keep it empty; explain any entry.
ALLOWED: set[tuple[str, str]] = set()


def findings_in_python(source: str) -> Iterator[str]:
    """Every suspicious literal of one Python module, as ``line N: what``."""
    for node in ast.walk(ast.parse(source)):
        for name, value in _named_values(node):
            if _secret_literal(name, value):
                yield f"line {value.lineno}: {name} = {_shown(value)}"
        if isinstance(node, ast.Call) and _called(node) == "SecretStr" and node.args and _text_of(node.args[0]):
            yield f"line {node.lineno}: SecretStr({_shown(node.args[0])})"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield from (f"line {node.lineno}: {what}" for what in findings_in_text(node.value))


def findings_in_text(text: str) -> Iterator[str]:
    """Credentials inside a URL, or an AMI ``secret = ...`` line with a value (a template placeholder is fine)."""
    for match in URL_CREDENTIALS.finditer(text):
        yield f"credentials in a URL: {match.group(0)[:40]}"
    for match in AMI_SECRET_LINE.finditer(text):
        yield f"a literal secret line: {match.group(0).strip()[:40]}"


def _named_values(node: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """(name, value) pairs where a value is bound to a name: assignments, keywords, defaults, dict entries."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            yield _target_name(target), node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        yield _target_name(node.target), node.value
    elif isinstance(node, ast.Call):
        yield from ((keyword.arg or "", keyword.value) for keyword in node.keywords)
    elif isinstance(node, ast.Dict):
        yield from ((key.value, value) for key, value in zip(node.keys, node.values, strict=True)
                    if isinstance(key, ast.Constant) and isinstance(key.value, str))
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        positional = node.args.posonlyargs + node.args.args
        with_defaults = positional[len(positional) - len(node.args.defaults):]  # defaults are the last ones
        yield from ((arg.arg, default) for arg, default in zip(with_defaults, node.args.defaults, strict=True))
        yield from ((arg.arg, default) for arg, default in zip(node.args.kwonlyargs, node.args.kw_defaults,
                                                               strict=True) if default is not None)


def _secret_literal(name: str, value: ast.expr) -> bool:
    """An environment variable's name (``CTI_AMI__SECRET``) is where a secret comes from, not a secret."""
    text = _text_of(value)
    if text is None or not SECRET_NAME.search(name) or ENV_NAME.fullmatch(text):
        return False
    return len(text) >= MIN_LENGTH or name.lower() in ("secret", "password")  # an AMI/SMTP login: any literal


def _text_of(value: ast.expr) -> str | None:
    """The text of a non-empty string literal, else None."""
    if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value:
        return value.value
    return None


def _target_name(target: ast.expr) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return ""


def _called(call: ast.Call) -> str:
    return call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")


def _shown(value: ast.expr) -> str:
    return repr(f"{(_text_of(value) or '')[:4]}...")


def shipped_files() -> list[Path]:
    return sorted(path for folder in SHIPPED for path in folder.rglob("*")
                  if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts)


def findings(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = findings_in_python(text) if path.suffix == ".py" else findings_in_text(text)
    relative = str(path.relative_to(ROOT))
    return [f"{relative} {what}" for what in found if (relative, what) not in ALLOWED]


def test_the_shipped_source_has_no_hard_coded_secret() -> None:
    files = shipped_files()
    assert len([path for path in files if path.suffix == ".py"]) > 150  # the whole tree, not a corner of it
    assert any(path.suffix == ".html" for path in files) and any(path.suffix == ".j2" for path in files)
    found = [line for path in files for line in findings(path)]
    assert found == [], "secrets belong in the config file or CTI_* variables:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    'AMI_SECRET = "0123456789abcdef0123"',
    'class S:\n    api_token: str = "tok-0123456789abcdefgh"',
    'connect(password="hunter2")',
    'login = {"Action": "Login", "Username": "cti", "Secret": "hunter2"}',
    'def connect(host: str, secret: str = "s3cret") -> None: ...',
    'def connect(*, signing_key: str = "0123456789abcdef01") -> None: ...',
    'key = SecretStr("correct horse battery staple")',
    'URL = "postgresql+asyncpg://cti:cti@127.0.0.1:55432/cti"',
    'REDIS = "redis://:sekrit@cache:6379/0"',
    'TEMPLATE = """[cti]\\nsecret = d754e0ed99\\n"""',
    'self.private_key = "-----BEGIN PRIVATE KEY-----"',
])
def test_the_scanner_finds_planted_secrets(source: str) -> None:
    assert list(findings_in_python(source)), source


@pytest.mark.parametrize("source", [
    'secret: SecretStr = SecretStr("")',
    'TOKEN_EXPIRY_KEY = web.AppKey("cti_token_expiry")',
    'KEY_PREFIX = "login-fail:"',
    'password = os.environ["CTI_SMTP__PASSWORD"]',
    'MESSAGE = "the secret is in the configuration file, see docs/SECURITY.md"',
    'url = "sqlite+aiosqlite:///var/cti.sqlite3"',
    'TEMPLATE = "[{user}]\\nsecret = {{ secret }}\\n"',
    'HEADER = "X-CSRF-Token"',
    'DEMO_PASSWORD_ENV = "CTI_DEMO_PASSWORD_FOR_EVERYONE"',
    'def f(token: str = "") -> None: ...',
])
def test_the_scanner_leaves_ordinary_code_alone(source: str) -> None:
    assert list(findings_in_python(source)) == [], source


def test_the_test_fixtures_credentials_are_found_where_they_belong() -> None:
    """The scripted AMI peer's secret and the test database's URL are real hits, in tests/ only."""
    assert any("secret = 's3cr...'" in line for line in findings(ROOT / "tests" / "fakes" / "ami_peer.py"))
    assert any("credentials in a URL" in line for line in findings(ROOT / "tests" / "plugins" / "database.py"))
