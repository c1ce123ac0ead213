"""Password hashing with argon2id (argon2-cffi) and the password policy."""

from __future__ import annotations

import logging
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 8
#: argon2 takes any length, but a megabyte "password" is a denial-of-service attempt
MAX_PASSWORD_LENGTH = 1024


class PasswordPolicyError(ValueError):
    """A new password that the policy refuses; the message says why."""


def check_password_policy(password: str, username: str | None = None) -> None:
    """Raise :class:`PasswordPolicyError` if ``password`` may not be used."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(
            f"password must have at most {MAX_PASSWORD_LENGTH} characters")
    if username and password.strip().lower() == username.strip().lower():
        raise PasswordPolicyError("password must differ from the user name")


class Passwords:
    """Hash and verify passwords; unknown users are verified against a dummy hash.

    Verifying the dummy costs what verifying a real hash costs, so the response time does
    not tell an attacker whether a user name exists.
    """

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        self._dummy: str | None = None
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        """An argon2id hash of ``password``."""
        return self.hasher.hash(password)

    def _dummy_hash(self) -> str:
        with self._lock:
            if self._dummy is None:
                self._dummy = self.hasher.hash(secrets.token_urlsafe(24))
            return self._dummy

    def verify(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        """``(ok, new_hash)``; ``new_hash`` is set when the stored hash needs upgrading.

        ``stored=None`` (unknown user, service account) burns the same time and fails.
        """
        if len(password) > MAX_PASSWORD_LENGTH:
            password = password[:MAX_PASSWORD_LENGTH]
        target = stored or self._dummy_hash()
        try:
            self.hasher.verify(target, password)
        except (VerificationError, InvalidHashError):
            return False, None
        if stored is None:
            return False, None
        if self.hasher.check_needs_rehash(stored):
            return True, self.hasher.hash(password)
        return True, None
