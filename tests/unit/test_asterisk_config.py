"""The rendered Asterisk configuration carries the settings, the secrets and nothing left undefined."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from cti.asterisk_config import (
    AsteriskConfigError,
    default_templates_dir,
    render_asterisk_config,
    sip_password,
)
from cti.settings import Settings

AMI_SECRET = "0123456789abcdef0123456789abcdef"
SIP_SECRET = "fedcba9876543210fedcba9876543210"
EXPECTED = {"asterisk.conf", "extensions.conf", "indications.conf", "logger.conf", "manager.conf",
            "modules.conf", "musiconhold.conf", "pjsip.conf", "queues.conf", "rtp.conf"}


def make_settings(**sections: dict[str, object]) -> Settings:
    raw: dict[str, dict[str, object]] = {"ami": {"secret": AMI_SECRET, "username": "ctiuser", "port": 5039},
                                         "agi": {"advertised_host": "10.1.2.3", "port": 4575}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return Settings.model_validate(raw)


def render(tmp_path: Path, settings: Settings | None = None, **kwargs: object) -> dict[str, str]:
    paths = render_asterisk_config(settings or make_settings(), tmp_path, sip_secret=SIP_SECRET, **kwargs)  # type: ignore[arg-type]
    return {path.name: path.read_text() for path in paths}


def section(text: str, name: str) -> str:
    """The body of ``[name]`` up to the next section header."""
    match = re.search(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert match, f"no [{name}] section"
    return match.group(1)


def test_renders_every_template_into_the_output_directory(tmp_path: Path) -> None:
    files = render(tmp_path)
    assert set(files) == EXPECTED
    assert {p.name for p in default_templates_dir().glob("*.conf.j2")} == {f"{n}.j2" for n in EXPECTED}


def test_manager_conf_has_the_ami_user_and_secret_from_settings(tmp_path: Path) -> None:
    manager = render(tmp_path)["manager.conf"]
    user = section(manager, "ctiuser")
    assert f"secret = {AMI_SECRET}\n" in user
    assert "port = 5039" in section(manager, "general")
    assert "permit = 127.0.0.1/255.255.255.255" in user
    assert user.index("deny = 0.0.0.0/0.0.0.0") < user.index("permit =")


def test_extra_ami_networks_are_permitted(tmp_path: Path) -> None:
    manager = render(tmp_path, ami_permit=["172.16.0.0/12"])["manager.conf"]
    assert "permit = 172.16.0.0/255.240.0.0" in manager


def test_secret_files_are_private(tmp_path: Path) -> None:
    render(tmp_path)
    for name in ("manager.conf", "pjsip.conf"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_no_template_syntax_is_left_in_the_output(tmp_path: Path) -> None:
    for name, text in render(tmp_path).items():
        assert "{{" not in text and "{%" not in text, name


def test_extensions_conf_sends_inbound_calls_to_the_agi_url(tmp_path: Path) -> None:
    settings = make_settings(asterisk={"inbound_context": "from-trunk"})
    extensions = render(tmp_path, settings)["extensions.conf"]
    assert "CTI_AGI_URL = agi://10.1.2.3:4575\n" in section(extensions, "globals")
    inbound = section(extensions, "from-trunk")
    for pattern in ("_X.", "_+X."):
        assert f"exten => {pattern},1," in inbound
    assert inbound.count("AGI(${CTI_AGI_URL}/incoming)") == 3
    assert "Goto(cti-fallback,s,1)" in inbound
    for context in ("cti-sim", "cti-holding", "cti-agents", "cti-agent-sim", "cti-fallback"):
        section(extensions, context)


def test_sip_passwords_differ_per_endpoint_and_follow_the_secret() -> None:
    names = ["caller", "agent1", "agent2"]
    passwords = {sip_password(SIP_SECRET, name) for name in names}
    assert len(passwords) == len(names)
    assert sip_password(SIP_SECRET, "agent1") == sip_password(SIP_SECRET, "agent1")
    assert sip_password("another secret", "agent1") != sip_password(SIP_SECRET, "agent1")


def test_pjsip_conf_has_every_endpoint_with_its_derived_password(tmp_path: Path) -> None:
    pjsip = render(tmp_path, agents=3)["pjsip.conf"]
    for name in ("caller", "agent1", "agent2", "agent3"):
        assert f"password = {sip_password(SIP_SECRET, name)}\n" in pjsip
    assert "agent4" not in pjsip
    assert "context = from-pstn" in section(pjsip, "caller")
    assert SIP_SECRET not in pjsip


@pytest.mark.parametrize("secret", ["", "has;semicolon", "two\nlines"])
def test_unusable_ami_secrets_are_refused(tmp_path: Path, secret: str) -> None:
    with pytest.raises(AsteriskConfigError):
        render(tmp_path, make_settings(ami={"secret": secret}))


def test_an_empty_sip_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AsteriskConfigError, match="sip_secret"):
        render_asterisk_config(make_settings(), tmp_path, sip_secret="")


def test_ami_must_bind_to_an_ip_address(tmp_path: Path) -> None:
    with pytest.raises(AsteriskConfigError, match=r"ami\.host"):
        render(tmp_path, make_settings(ami={"host": "asterisk.example"}))


def test_undefined_template_variables_fail_loudly(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "broken.conf.j2").write_text("value = {{ no_such_variable }}\n")
    with pytest.raises(AsteriskConfigError, match="no_such_variable"):
        render(tmp_path / "out", templates_dir=templates)
