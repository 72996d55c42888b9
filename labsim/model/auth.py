"""JWT issue and verify (HS256 only, always with `exp`, except in the course guide's
profile: see `guide.py`) and the user table.

Token expiry is wall-clock time on purpose: a token leaves the simulation (students paste
it into curl), so it must mean the same thing outside it. Credential checks take the
same time whether the user exists or not.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import jwt
from cachetools import LRUCache

from ..core.numbers import within
from .config import Topology, User
from .guide import GUIDE_SECRET, short_key_allowed

ALGORITHM = "HS256"


class TokenError(Exception):
    """A token that must be refused; the message says why."""


def _digest(text: str) -> bytes:
    # surrogatepass: any string a JSON body can carry hashes, even a lone surrogate
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Auth:
    secret: str
    users: tuple[User, ...]
    token_ttl: float = 3600.0
    required_claims: tuple[str, ...] = ("exp", "sub")
    # The guide's 6-byte secret, which pyjwt warns about on every use: `up` warns once.
    public_secret: bool = False
    # Tokens whose signature was already checked -> their claims. Checking an HS256
    # signature costs more than the rest of a cache hit, and a client sends the same
    # token with every request. Expiry is still checked on every use.
    _verified: LRUCache[str, dict] = field(
        default_factory=lambda: LRUCache(maxsize=4096), compare=False, repr=False
    )

    def check_credentials(self, username: str, password: str) -> User | None:
        """The user whose credentials these are, compared in constant time."""
        given_name, given_password = _digest(username), _digest(password)
        found = None
        for user in self.users:  # visit every user so timing does not reveal who exists
            name_ok = hmac.compare_digest(_digest(user.username), given_name)
            password_ok = hmac.compare_digest(_digest(user.password), given_password)
            if name_ok and password_ok:
                found = user
        return found

    def issue(self, user: User) -> str:
        now = int(time.time())
        claims = {
            "sub": user.username,
            "username": user.username,
            "role": user.role,
            "iat": now,
            "exp": now + int(self.token_ttl),
        }
        with short_key_allowed() if self.public_secret else nullcontext():
            return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> dict:
        if not token.isascii():  # a JWT is base64url and dots; anything else is not one
            raise TokenError("token is malformed")
        claims = self._verified.get(token)
        if claims is not None:
            exp = claims.get("exp")
            if exp is not None and exp <= time.time():
                del self._verified[token]
                raise TokenError("token expired")
            return claims
        claims = self._decode(token)
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> dict:
        try:
            with short_key_allowed() if self.public_secret else nullcontext():
                claims = jwt.decode(
                    token,
                    self.secret,
                    algorithms=[ALGORITHM],
                    options={"require": list(self.required_claims)},
                )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError("token algorithm not allowed (HS256 only)") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature is invalid") from None
        except jwt.MissingRequiredClaimError as e:
            raise TokenError(f"token lacks the {e.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise TokenError("token is malformed") from None
        # pyjwt reads a numeric string as a time too; the cache above compares numbers.
        exp = claims.get("exp")
        if "exp" in claims and not within(exp, -math.inf, math.inf):
            raise TokenError("token's 'exp' claim is not a number")
        return claims


def gateway_auth(topology: Topology, token_ttl: float) -> Auth:
    """The gateways' token rules: a secret made per run, or the guide's (`guide.py`)."""
    if topology.auth.mode == "guide":
        return Auth(GUIDE_SECRET, topology.users, token_ttl, required_claims=(), public_secret=True)
    return Auth(topology.secret, topology.users, token_ttl)


def token_from_header(value: str | None) -> str | None:
    """The token in an Authorization header: raw (as the lab sends it) or `Bearer <token>`."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return value.strip()
