"""Local accounts: bcrypt password hashes and HS256 JWT access tokens.

A token names its sign-in session in `sid` when it has one (see
`clipsync.services.auth_sessions`).

The signing key comes from `[plugins.auth_local] jwt_secret`; when that is empty a
random key is generated on first start and kept in `<data_dir>/secrets/jwt.key`
(mode 600), so tokens survive restarts without anyone having to invent a secret.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import ClassVar

import bcrypt
import jwt

from clipsync import generated_keys, hookimpl
from clipsync.backends import BackendContext, TokenClaims
from clipsync.errors import ConfigError, Unauthorized
from clipsync.settings import Secret

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["id", "email", "role", "categoryRole", "tokenVersion", "exp", "iat", "jti"]


@dataclass(frozen=True)
class AuthLocalSettings:
    # bcrypt work factor: each +1 doubles the time to check a password (about 0.25 s at 12).
    bcrypt_rounds: int = 12
    # Key that signs session tokens. Empty: generated once into the data directory.
    jwt_secret: Secret = field(default_factory=Secret)

    def __post_init__(self) -> None:
        if not 4 <= self.bcrypt_rounds <= 16:
            raise ConfigError(
                f"[plugins.auth_local] bcrypt_rounds must be between 4 and 16 "
                f"(got {self.bcrypt_rounds})"
            )


class LocalAuth:
    """The `local` auth backend."""

    name: ClassVar[str] = "local"

    def __init__(self, rounds: int, key: str) -> None:
        self.rounds = rounds
        self._key = key

    @classmethod
    def create(cls, context: BackendContext) -> LocalAuth:
        config: AuthLocalSettings = context.config
        key = generated_keys.key_for(
            context.data_dir / "secrets" / "jwt.key", 64, config.jwt_secret.reveal()
        )
        return cls(config.bcrypt_rounds, key)

    @staticmethod
    def _prehash(password: str) -> bytes:
        # bcrypt reads at most 72 bytes; hashing first lets long passphrases count in full.
        return base64.b64encode(hashlib.sha256(password.encode()).digest())

    def hash_password(self, password: str) -> str:
        return bcrypt.hashpw(self._prehash(password), bcrypt.gensalt(self.rounds)).decode()

    def check_password(self, password: str, password_hash: str) -> bool:
        try:
            return bcrypt.checkpw(self._prehash(password), password_hash.encode())
        except ValueError:  # not a bcrypt hash
            return False

    def issue_token(self, claims: TokenClaims) -> str:
        payload = {
            "id": claims.id,
            "sub": str(claims.id),
            "email": claims.email,
            "role": claims.role,
            "categoryRole": claims.category_role,
            "tokenVersion": claims.token_version,
            "iat": claims.issued_at,
            "exp": claims.expires_at,
            "jti": uuid.uuid4().hex,
        }
        if claims.session_id:
            payload["sid"] = claims.session_id
        return jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def read_token(self, token: str) -> TokenClaims:
        try:
            payload = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], options={"require": REQUIRED_CLAIMS}
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("Your session has expired. Please sign in again.") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("Your session is not valid. Please sign in again.") from None
        try:
            return TokenClaims(
                id=int(payload["id"]),
                email=str(payload["email"]),
                role=str(payload["role"]),
                category_role=str(payload["categoryRole"]),
                token_version=int(payload["tokenVersion"]),
                issued_at=int(payload["iat"]),
                expires_at=int(payload["exp"]),
                token_id=str(payload["jti"]),
                session_id=str(payload.get("sid") or ""),
            )
        except (TypeError, ValueError):
            raise Unauthorized("Your session is not valid. Please sign in again.") from None


@hookimpl
def settings_schema() -> type:
    return AuthLocalSettings


@hookimpl
def register_auth_backends() -> list[type]:
    return [LocalAuth]
