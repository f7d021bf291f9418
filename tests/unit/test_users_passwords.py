"""Password hashes: scrypt with a random salt and its parameters in the string; the policy."""

from __future__ import annotations

import pytest

from cti.users.passwords import (
    MIN_LENGTH,
    PasswordRejected,
    check_policy,
    dummy_hash,
    hash_password,
    verify_password,
    verify_password_async,
)

PASSWORD = "correct horse battery"


def test_hash_names_its_parameters_and_verifies() -> None:
    stored = hash_password(PASSWORD)
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert salt and key and PASSWORD not in stored
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "!", stored)
    assert not verify_password("", stored)


def test_same_password_gives_different_hashes() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_unicode_passwords_verify() -> None:
    stored = hash_password("mot de passe élève ☎")
    assert verify_password("mot de passe élève ☎", stored)
    assert not verify_password("mot de passe eleve ☎", stored)


@pytest.mark.parametrize("stored", [
    "", "plain", "bcrypt$12$x", "scrypt$16384$8$1$c2FsdA", "scrypt$abc$8$1$c2FsdA$a2V5",
    "scrypt$1000$8$1$c2FsdA$a2V5",  # not a power of two
    "scrypt$2097152$8$1$c2FsdA$a2V5",  # asks for far too much memory
    "scrypt$16384$8$1$!!!$a2V5x",
])
def test_a_malformed_stored_hash_never_verifies_nor_raises(stored: str) -> None:
    assert verify_password(PASSWORD, stored) is False


def test_older_parameters_still_verify() -> None:
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=1024, r=8, p=1, dklen=32)
    encode = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()  # noqa: E731
    assert verify_password(PASSWORD, f"scrypt$1024$8$1${encode(salt)}${encode(key)}")


async def test_an_unknown_user_costs_a_verification_and_fails() -> None:
    assert dummy_hash().startswith("scrypt$")
    assert await verify_password_async(PASSWORD, None) is False
    assert await verify_password_async(PASSWORD, hash_password(PASSWORD)) is True


def test_policy() -> None:
    check_policy("x" * MIN_LENGTH)
    with pytest.raises(PasswordRejected, match="at least 10 characters"):
        check_policy("short")
    with pytest.raises(PasswordRejected, match="only spaces"):
        check_policy(" " * 12)
    with pytest.raises(PasswordRejected, match="at most"):
        check_policy("x" * 5000)
    assert PasswordRejected.code == "users.password_rejected"
