"""JWT issue and verify, the verified-token cache, and the Authorization header forms."""

from __future__ import annotations

import time
from types import SimpleNamespace

import jwt
import pytest

import labsim.model.auth
from labsim.model.auth import Auth, TokenError, token_from_header
from labsim.model.config import User

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
USERS = (User("user1", "password123"), User("admin", "s3cret", "admin"))


def test_credentials():
    auth = Auth(SECRET, USERS)
    assert auth.check_credentials("admin", "s3cret") == USERS[1]
    assert auth.check_credentials("admin", "password123") is None
    assert auth.check_credentials("nobody", "s3cret") is None
    assert auth.check_credentials("", "") is None


def test_issue_and_verify():
    auth = Auth(SECRET, USERS, token_ttl=60)
    claims = auth.verify(auth.issue(USERS[1]))
    assert claims["sub"] == "admin" and claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 60


def test_a_cached_token_still_expires(monkeypatch):
    auth = Auth(SECRET, USERS, token_ttl=60)
    token = auth.issue(USERS[0])
    assert auth.verify(token)["sub"] == "user1"  # now verified and cached
    later = time.time() + 61
    monkeypatch.setattr(labsim.model.auth, "time", SimpleNamespace(time=lambda: later))
    with pytest.raises(TokenError, match="expired"):
        auth.verify(token)


def test_another_secret_is_refused():
    token = Auth(SECRET, USERS).issue(USERS[0])
    with pytest.raises(TokenError, match="signature"):
        Auth(SECRET + "-other", USERS).verify(token)


def test_none_algorithm_is_refused():
    token = jwt.encode({"sub": "user1", "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(TokenError, match="algorithm"):
        Auth(SECRET, USERS).verify(token)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("abc.def.ghi", "abc.def.ghi"),
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer   abc.def.ghi ", "abc.def.ghi"),
        ("Bearer", None),
    ],
)
def test_token_from_header(header, token):
    assert token_from_header(header) == token
