"""A login service (issue 22, Lab 5's): gateways that hand it their token checks, its own
answers at `POST /login` and `POST /validate_token`, and its error paths."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

import labsim

TOPOLOGY = """
name = "login"

[components.edge]
kind = "load_balancer"
port = 0
backends = "api"

[components.api]
kind = "gateway"
ports = [0]
auth = "login"
endpoints."GET /data" = { steps = [], message = "hello" }

[components.login]
kind = "login"
port = 0
"""


def call(url: str, body: object = None, token: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    path = tmp_path_factory.mktemp("login") / "login.toml"
    path.write_text(TOPOLOGY)
    with labsim.serve(path) as served:
        yield served


def test_the_gateway_logs_in_and_checks_tokens_through_the_login_service(lab):
    status, answer = call(f"{lab.url}/login", {"username": "user1", "password": "password123"})
    assert status == 200 and answer["gateway_id"] == "api-0"
    token = answer["token"]
    assert call(f"{lab.url}/data", token=token) == (
        200,
        {"message": "hello", "gateway_id": "api-0"},
    )
    assert lab.cluster.counters("login")["tokens_issued"] == 1


def test_a_request_without_a_good_token_is_refused_with_403(lab):
    status, answer = call(f"{lab.url}/data")
    assert status == 403 and "Bearer" in answer["error"]
    status, answer = call(f"{lab.url}/data", token="not.a.token")
    assert status == 403 and "login refused the token (403)" in answer["error"]


def test_wrong_credentials_pass_on_the_login_service_s_401(lab):
    status, answer = call(f"{lab.url}/login", {"username": "user1", "password": "nope"})
    assert status == 401 and answer["error"] == "invalid_credentials"
    status, answer = call(f"{lab.url}/login", {"username": 1})
    assert status == 400 and "username" in answer["error"]


def test_the_login_service_reads_a_token_from_its_body_or_the_header(lab):
    login = lab.urls["login"]
    _, answer = call(f"{login}/login", {"username": "user1", "password": "password123"})
    token = answer["token"]
    assert call(f"{login}/validate_token", {"token": token})[0] == 200
    assert call(f"{login}/validate_token", {}, token=token) == (
        200,
        {"valid": True, "username": "user1"},
    )
    status, answer = call(f"{login}/validate_token", {})
    assert status == 400 and "token is missing" in answer["error"]
    status, answer = call(f"{login}/validate_token", {"token": token[:-2] + "xx"})
    assert status == 403 and answer["error"].startswith("invalid token")
