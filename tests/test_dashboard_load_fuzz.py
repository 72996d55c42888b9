"""Property-based fuzz of the dashboard's load endpoints (`/api/load...`) of a running
`python -m labsim up`: whatever the method, headers and body, no answer is a 5xx, every
error is JSON with an "error" key, nothing but a well-formed request with the admin token
changes the load, and `up` stops cleanly after, with no traceback.

LABSIM_FUZZ_EXAMPLES sets how many requests hypothesis draws (default 300, as test_fuzz).
"""

from __future__ import annotations

import http.client
import json
import os
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Up, free_ports, write_scenario

EXAMPLES = int(os.environ.get("LABSIM_FUZZ_EXAMPLES", "300"))
PATHS = ["/api/load", "/api/load/start", "/api/load/rate", "/api/load/stop", "/api/load/x"]
ACTIONS = {"/api/load/start", "/api/load/rate", "/api/load/stop"}
FLOWS = """
[[load.flows]]
name = "reader"
steps = [{ request = "POST /login" }, { request = "GET /data", repeat = 3, think = 0.01 }]

[[load.flows]]
name = "browser"
steps = [{ request = "GET /data?key=2" }]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(host, port, admin token, up) of a `labsim up` with its dashboard, whose scenario
    has user flows for a start to name."""
    *ports, panel = free_ports(9)
    scenario = write_scenario(tmp_path_factory.mktemp("fuzz") / "s.toml", ports, FLOWS)
    # Quiet: a log line a request would fill the pipe nobody reads while the fuzz runs.
    up = Up("--scenario", str(scenario), "--quiet", "--dashboard-port", str(panel))
    link = next(line.split(" ", 1)[1].strip() for line in up.banner if line.startswith("Dashboard"))
    base, token = link.split("#token=", 1)
    address = urlsplit(base)
    yield address.hostname, address.port, unquote(token), up
    if up.proc.poll() is None:
        up.stop()


numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(0, 30),
    st.sampled_from([0, 1, 500, 500.0001, 501, -0.0, 1e308, 10**400, -(10**400)]),
)
scalars = st.one_of(numbers, st.none(), st.booleans(), st.text(max_size=20))
names = st.one_of(
    st.sampled_from(["data", "longtask", "process", "db", "/data?key=1", "/", "//x", "/a b"]),
    st.text(max_size=30),
    st.text(max_size=30).map(lambda t: "/" + t),
)
mixes = st.one_of(st.dictionaries(names, numbers, max_size=18), scalars, st.lists(names))
starts = st.fixed_dictionaries(
    {"rate": st.one_of(st.floats(0, 30), scalars)},
    optional={
        "mix": mixes,
        "seed": scalars,
        "auth": st.sampled_from(["login", "none", "forged", "root", ""]),
        "flow": st.one_of(
            st.sampled_from(["reader", "browser", "Reader", "", "x" * 300]),
            st.text(max_size=5),
            scalars,
        ),
    },
)
bodies = st.one_of(
    starts.map(lambda b: json.dumps(b).encode()),
    st.fixed_dictionaries({"rate": scalars}).map(lambda b: json.dumps(b).encode()),
    st.sampled_from([b"", b"{", b"[]", b"null", b'{"rate": NaN}', b'{"rate": Infinity}']),
    st.binary(max_size=64),
    st.just(b"[" * 100 + b"]" * 100),
)


@st.composite
def anything(draw):
    path = draw(st.sampled_from(PATHS))
    method = draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "HEAD"]))
    auth = draw(st.sampled_from(["token", "token", "none", "wrong"]))
    kind = draw(st.sampled_from(["application/json", "application/json", "text/plain", None]))
    host = draw(st.sampled_from([None, None, None, "evil.example"]))
    return path, method, auth, kind, host, draw(bodies)


# Most requests are well formed but for their bodies: those reach the checks of each value.
well_formed = st.tuples(
    st.sampled_from(sorted(ACTIONS)),
    st.just("POST"),
    st.just("token"),
    st.just("application/json"),
    st.none(),
    st.one_of(
        starts.map(lambda b: json.dumps(b).encode()),
        st.fixed_dictionaries({"rate": st.one_of(st.floats(0, 30), scalars)}).map(
            lambda b: json.dumps(b).encode()
        ),
        bodies,
    ),
)
requests = st.one_of(well_formed, well_formed, anything())


def send(lab, method, path, headers, body: bytes = b"") -> tuple[int, bytes]:
    host, port, _, _ = lab
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def admin(lab) -> dict[str, str]:
    return {"Authorization": f"Bearer {lab[2]}", "Content-Type": "application/json"}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests)
def test_no_request_to_the_load_s_endpoints_is_a_5xx(lab, request):
    path, method, auth, kind, host, body = request
    headers = {}
    if auth == "token":
        headers["Authorization"] = f"Bearer {lab[2]}"
    elif auth == "wrong":
        headers["Authorization"] = "Bearer wrong"
    if kind:
        headers["Content-Type"] = kind
    if host:
        headers["Host"] = host
    before = json.loads(send(lab, "GET", "/api/load", {})[1])
    status, answer = send(lab, method, path, headers, body)
    assert status < 500, (status, answer)
    if method != "HEAD" and status >= 400:
        assert "error" in json.loads(answer), answer
    if method != "HEAD" and status < 300:
        json.loads(answer)
    allowed = auth == "token" and host is None and path in ACTIONS and method == "POST"
    if not allowed:
        assert status >= 400 or path == "/api/load"
        after = json.loads(send(lab, "GET", "/api/load", {})[1])
        assert after["running"] == before["running"]
        if before["running"]:
            assert after["rate"] == before["rate"]
    steered = method == "POST" and path in ACTIONS - {"/api/load/stop"}
    if status == 200 and steered and json.loads(answer)["rate"] > 30:
        send(lab, "POST", "/api/load/rate", admin(lab), b'{"rate": 10}')  # kept light


def test_after_the_fuzz_up_stops_cleanly(lab):
    send(lab, "POST", "/api/load/stop", admin(lab))  # whatever the fuzz left running
    status, _ = send(lab, "POST", "/api/load/start", admin(lab), b'{"rate": 20}')
    assert status == 200
    assert json.loads(send(lab, "GET", "/api/load", {})[1])["running"] is True
    send(lab, "POST", "/api/load/stop", admin(lab))
    status, _ = send(lab, "POST", "/api/load/start", admin(lab), b'{"rate": 20, "flow": "reader"}')
    assert status == 200
    assert json.loads(send(lab, "GET", "/api/load", {})[1])["flow"] == "reader"
    code, out, err = lab[3].stop()
    assert code == 0, err
    assert "Traceback" not in out + err and "labsim: stopped" in out
