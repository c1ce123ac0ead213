"""The JWT signing secret: from the environment, a config file, or (development) generated.

Order: ``CAMPO_JWT_SECRET``; else the secret file (``CAMPO_SECRET_FILE``, default
``<data_dir>/jwt_secret``); else, in development only, a random secret is generated and
written to that file (mode 0600) so tokens survive restarts. Production refuses to start
without one.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from engine.errors import UserError
from engine.settings import Settings

log = logging.getLogger(__name__)

#: HS256 keys shorter than the hash output weaken it (RFC 7518 3.2)
MIN_SECRET_LENGTH = 32


class AuthConfigError(UserError):
    """A deployment setting makes authentication unsafe; ``campo`` prints it and exits."""


def secret_path(settings: Settings) -> Path:
    """Where the JWT secret file is (or would be written)."""
    if settings.secret_file is not None:
        return settings.secret_file
    data = settings.data_dir if settings.data_dir.is_absolute() \
        else settings.project / settings.data_dir
    return data / "jwt_secret"


def resolve_jwt_secret(settings: Settings) -> str:
    """The JWT secret, or :class:`AuthConfigError` when there is no acceptable one."""
    secret = settings.jwt_secret.get_secret_value().strip()
    source = "CAMPO_JWT_SECRET"
    path = secret_path(settings)
    if not secret and path.is_file():
        secret = path.read_text(encoding="utf-8").strip()
        source = str(path)
    if secret:
        if len(secret) < MIN_SECRET_LENGTH:
            raise AuthConfigError(
                f"the JWT secret from {source} has {len(secret)} characters; it needs at "
                f"least {MIN_SECRET_LENGTH} (generate one with: python -c "
                "'import secrets; print(secrets.token_urlsafe(48))')")
        return secret
    if settings.production:
        raise AuthConfigError(
            "production mode needs a JWT secret: set CAMPO_JWT_SECRET or write one to "
            f"{path} (CAMPO_SECRET_FILE); refusing to start with a generated secret")
    secret = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    log.warning("development mode: generated a JWT secret in %s", path)
    return secret
