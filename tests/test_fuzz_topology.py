"""Property-based fuzz of a topology of every new kind (`[components]`, issue 22).

test_fuzz.py fuzzes the lab's components; this module fuzzes those a scenario's
`[components.NAME]` tables add, with test_fuzz.py's strategies, rules and raw cases. One
`python -m labsim up` serves the whole module, on free ports, with test_fuzz.py's admin
token and JWT secret from the environment, a topology of eleven replicas written below:

    edge (load balancer, token bucket)
      -> api (two gateways, auth = "login": each token checked by the login service)
           POST /login            -> login (login service; a count per window on /login only)
           GET /data, POST /orders -> lb-ms (load balancer, count per window)
                                        -> svc-a: cpu, io, read_through cache -> database
                                                  (POST /orders: a cpu step and a message)
                                        -> svc-b: GET /data calls the database;
                                                  POST /orders calls audit with POST
           POST /longtask         -> worker (enqueue; the worker has a count per window)
           POST /report           -> worker (enqueue with ignore_status = true)
           GET /process           -> its own message
    cache (token bucket), database (count per window), audit (service, token bucket)

hypothesis draws requests (replica, method, path among every route these serve plus unknown
ones, headers with Authorization garbage, valid and forged tokens, bodies of random JSON,
oversized, too deep, of the wrong Content-Type, not UTF-8) that http.client sends; malformed
HTTP, test_fuzz.py's fixed cases and random bytes, goes to every port over raw sockets.
What must hold:

- no answer is a 5xx other than 502, 503 or 504, and every error the application answers
  (4xx, 5xx) is JSON with an "error" key; malformed HTTP gets a status below 500 or a
  closed connection;
- without the admin token no /admin/ route answers 2xx; without a valid token no gateway
  endpoint does (on a gateway or through the edge), nor the login's /validate_token;
- a route that reads a body refuses (never 2xx) a body over 64 KiB (413), JSON nested
  deeper than 32 (400), and a non-empty body whose Content-Type is not application/json
  (415); a load balancer refuses any body over 64 KiB it would proxy (413). Where a rate
  limit counts the route before the body is read, its 429 may come first;
- well-formed requests for the read-only routes answer 200 (429 where a rate limit on the
  way may refuse them); the lab's own login answers 200 (or the login's 429); a gateway
  endpoint with a valid token and a small JSON body answers 200 or 202 (or a 429 passed on);
- `up` never writes a traceback; after the fuzz every component's /health is 200, its
  /status names it, and `up` stops cleanly.

LABSIM_FUZZ_EXAMPLES sets how many requests hypothesis draws (default 150). The module
prints a one-line summary at its end (`pytest -s` shows it) and adds it to the file
LABSIM_FUZZ_REPORT names, if set. What it found while it was written (a 429 passed on
without its Retry-After, a body within the limit re-encoded past the next hop's) is tested
on its own near the end, each on a small topology served in this process.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import labsim

from . import test_fuzz as lab_fuzz
from .conftest import free_ports
from .test_fuzz import (
    ADMIN,
    ADMIN_OK,
    ADMIN_TOKEN,
    COMMON,
    GET,
    JWT_OK,
    KNOWN_METHODS,
    MANGLES,
    MAX_BODY,
    MAX_DEPTH,
    POST,
    RAW_CASES,
    SECRET,
    SET_APART,
    SETTINGS,
    SINGLETONS,
    SURELY_TOO_DEEP,
    TIMEOUT,
    USER,
    Answer,
    Body,
    LoggedUp,
    bodies,
    clip,
    json_body,
    json_values,
    log_problems,
    media_type,
    plain,
    raw_problems,
    send_raw,
)

EXAMPLES = int(os.environ.get("LABSIM_FUZZ_EXAMPLES", "150"))
RAW_EXAMPLES = max(1, EXAMPLES // 10)

# The eleven replicas, in port order: the role each plays in the judging below.
ROLES = (
    "edge",
    "gateway",
    "gateway",
    "login",
    "lb-ms",
    "svc-a",
    "svc-b",
    "audit",
    "cache",
    "database",
    "worker",
)
# How the fuzz names them (a gateway's id is api-<port>: `Lab.id_of`).
NAMES = (
    "edge",
    "api-1",
    "api-2",
    "login",
    "lb-ms",
    "svc-a",
    "svc-b",
    "audit",
    "cache",
    "database",
    "worker",
)

ONLY_GET = frozenset({"GET"})  # an endpoint's GET, added with add_route: no HEAD
SERVICE = {**COMMON, "/data": ONLY_GET, "/orders": POST}
GATEWAY = {**SERVICE, "/login": POST, "/longtask": POST, "/report": POST, "/process": ONLY_GET}
# Routes and methods each role serves itself; a load balancer proxies everything else to
# the role in BEHIND ("service": svc-a or svc-b, whichever lb-ms picks).
SERVED = {
    "edge": COMMON,
    "lb-ms": COMMON,
    "gateway": GATEWAY,
    "login": {**COMMON, "/login": POST, "/validate_token": POST},
    "service": SERVICE,
    "svc-a": SERVICE,
    "svc-b": SERVICE,
    "audit": {**COMMON, "/audit": POST},
    "cache": lab_fuzz.SERVED["cache"],
    "database": lab_fuzz.SERVED["database"],
    "worker": lab_fuzz.SERVED["worker"],
}
BEHIND = {"edge": "gateway", "lb-ms": "service"}
ROUTES = tuple(sorted({route for routes in SERVED.values() for route in routes}))
NEEDS_TOKEN = {"/data", "/orders", "/longtask", "/report", "/process"}  # on a gateway
# (role, route) whose POST handler reads a JSON body; /admin/faults on every role. svc-a's
# POST /orders and audit's POST /audit answer a message and read nothing; "service"
# (through lb-ms) may be svc-a.
READS_BODY = {
    ("gateway", "/login"),
    ("gateway", "/orders"),
    ("gateway", "/longtask"),
    ("gateway", "/report"),
    ("login", "/login"),
    ("login", "/validate_token"),
    ("svc-b", "/orders"),
    ("cache", "/cache/{key}"),
    ("worker", "/task"),
}
# Replicas whose own rate limit counts a route on arrival, before its handler reads the
# body: role -> the routes it counts (None: every work route).
COUNTS_ON_ARRIVAL: dict[str, frozenset[str] | None] = {
    "login": frozenset({"/login"}),
    "lb-ms": None,
    "audit": None,
    "cache": None,
    "database": None,
    "worker": frozenset({"/task", "/task/{id}"}),
}
# Well-formed requests for these answer 200 (with the token they need); "429" where a rate
# limit on the way may refuse them. /data without a key of the client's choice.
READ_ONLY = {
    ("*", "/health"): {200},
    ("*", "/metrics"): {200},
    ("*", "/status"): {200},
    ("*", "/admin/faults"): {200},
    ("gateway", "/data"): {200, 429},  # lb-ms, the database, the cache
    ("gateway", "/process"): {200, 429},  # the edge's token bucket
    ("service", "/data"): {200, 429},
    ("svc-a", "/data"): {200, 429},
    ("svc-b", "/data"): {200, 429},
    ("database", "/db"): {200, 429},
    ("cache", "/cache"): {200, 429},
    ("cache", "/cache/stats"): {200, 429},
}
# A gateway endpoint with a valid token and a small JSON body: what it answers.
WORKS = {
    "/orders": {200, 429},  # lb-ms, audit
    "/longtask": {202, 429},  # the worker's count per window
    "/report": {202},  # ignore_status: whatever the worker says
}

# Every request sent and every outcome seen, for the summary at the end of the module.
SENT: Counter[str] = Counter()
OUTCOMES: Counter[object] = Counter()


# --- `up` of the topology, started once for the module ----------------------------------------


def write_topology(path: Path, ports: list[int]) -> Path:
    edge, api1, api2, login, lb_ms, svc_a, svc_b, audit, cache, database, worker = ports
    path.write_text(
        f"""
name = "fuzz-topology"

[components.edge]
kind = "load_balancer"
port = {edge}
latency = 0
backends = "api"
rate_limit = {{ rate = 100, burst = 200 }}

[components.api]
kind = "gateway"
ports = [{api1}, {api2}]
latency = 0
auth = "login"
endpoints."GET /data" = [{{ call = "lb-ms" }}]
endpoints."POST /orders" = [{{ call = "lb-ms", method = "POST" }}]
endpoints."POST /longtask" = [{{ enqueue = "worker" }}]
endpoints."POST /report" = [{{ enqueue = "worker", ignore_status = true }}]
endpoints."GET /process" = {{ steps = [], message = "Business logic executed" }}

[components.login]
kind = "login"
port = {login}
latency = 0
rate_limit = {{ requests = 30, window = 60, paths = ["/login"] }}

[components.lb-ms]
kind = "load_balancer"
port = {lb_ms}
latency = 0
backends = ["svc-a", "svc-b"]
rate_limit = {{ requests = 10000, window = 60 }}

[components.svc-a]
kind = "service"
port = {svc_a}
latency = 0
endpoints."GET /data" = [
  {{ cpu = 0.001 }},
  {{ io = 0.001 }},
  {{ read_through = "cache", key = "my_data", source = {{ call = "database", path = "/db" }} }},
]
endpoints."POST /orders" = {{ steps = [{{ cpu = 0.001 }}], message = "order taken" }}

[components.svc-b]
kind = "service"
port = {svc_b}
latency = 0
endpoints."GET /data" = [{{ call = "database", path = "/db" }}]
endpoints."POST /orders" = [{{ call = "audit", method = "POST", path = "/audit" }}]

[components.audit]
kind = "service"
port = {audit}
latency = 0
rate_limit = {{ rate = 5, burst = 5 }}
endpoints."POST /audit" = {{ steps = [{{ io = 0.001 }}], message = "audited" }}

[components.cache]
kind = "cache"
port = {cache}
latency = 0
rate_limit = {{ rate = 20, burst = 40 }}

[components.database]
kind = "database"
port = {database}
latency = 0.001
rate_limit = {{ requests = 50, window = 60 }}

[components.worker]
kind = "worker"
port = {worker}
latency = 0
task_duration = 0.01
rate_limit = {{ requests = 40, window = 60, paths = ["/task"] }}
"""
    )
    return path


class Lab(lab_fuzz.Lab):
    def __repr__(self) -> str:
        return f"Lab({dict(zip(NAMES, self.ports, strict=True))})"

    def id_of(self, index: int) -> str:
        """The replica's id in the topology: a gateway's is api-<port>."""
        return f"api-{self.ports[index]}" if ROLES[index] == "gateway" else NAMES[index]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-topology")
    ports = free_ports(len(ROLES))
    scenario = write_topology(folder / "topology.toml", ports)
    env = {
        "LABSIM_ADMIN_TOKEN": ADMIN_TOKEN,  # test_fuzz.py's: its raw cases carry it
        "LABSIM_SECRET": SECRET,  # so that the fuzz can forge bad tokens
        "PYTHONIOENCODING": "utf-8:strict",  # as test_fuzz.py: a desktop's UTF-8 locale
    }
    up = LoggedUp(folder, "--scenario", str(scenario), env=env)
    started = time.monotonic()
    try:
        answer = send_plain(ports[0], "POST", "/login", json.dumps(USER).encode(), "login")
        assert answer.status == 200, answer
        yield Lab(ports, up, json.loads(answer.body)["token"].encode())
    finally:
        up.stop()
        line = summary(time.monotonic() - started)
        print("\n" + line)
        if os.environ.get("LABSIM_FUZZ_REPORT"):  # after test_fuzz.py's line, if it ran
            with open(os.environ["LABSIM_FUZZ_REPORT"], "a") as report:
                report.write(line + "\n")


def summary(seconds: float) -> str:
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(SENT.items()))
    statuses = dict(sorted(OUTCOMES.items(), key=lambda item: str(item[0]).rjust(8)))
    return (
        f"labsim topology fuzz: {sum(SENT.values())} requests ({kinds}) in {seconds:.1f} s, "
        f"statuses {statuses}"
    )


# --- Sending ------------------------------------------------------------------------------------


def record(kind: str, answer: Answer) -> Answer:
    SENT[kind] += 1
    OUTCOMES[answer.status] += 1
    return answer


def send_plain(port: int, method: str, path: str, body: bytes, kind: str, **headers: str):
    """A well-formed request, for set-up and clean-up."""
    return record(kind, well_formed(port, method, path, body, **headers))


def well_formed(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json", **headers})
        return lab_fuzz._read(conn)
    finally:
        conn.close()


class Request(lab_fuzz.Request):
    """test_fuzz.py's request, on one of this topology's ports; b"{jwt}" in a header or in
    the body stands for the lab's token."""

    def __repr__(self) -> str:
        headers = ", ".join(f"{n}: {clip(v, 80)}" for n, v in self.headers)
        return (
            f"Request({NAMES[self.port]}, {self.method} {clip(self.target, 200)}, "
            f"route {self.route}, host {self.host!r}, chunked {self.chunked}, "
            f"headers [{headers}], {self.body!r})"
        )


def send(lab: Lab, req: Request) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", lab.ports[req.port], timeout=TIMEOUT)
    data = req.body.data.replace(b"{jwt}", lab.jwt)
    try:
        conn.putrequest(
            req.method, req.target, skip_host=req.host is not None, skip_accept_encoding=True
        )
        if req.host is not None:
            conn.putheader("Host", req.host)
        for name, value in req.headers:
            conn.putheader(name, value.replace(b"{jwt}", lab.jwt))
        if req.body.encoding is not None:
            conn.putheader("Content-Encoding", req.body.encoding)
        if req.chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders(lab_fuzz._chunks(data), encode_chunked=True)
        else:
            if data or req.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data or None)
        answer = lab_fuzz._read(conn)
    except TimeoutError:
        answer = Answer("timeout", {}, b"", f"no answer within {TIMEOUT:g} s")
    except (OSError, http.client.HTTPException) as e:
        answer = Answer("closed", {}, b"", repr(e))
    finally:
        conn.close()
    return record("fuzzed", answer)


# --- Strategies (test_fuzz.py's, for this topology's routes) ------------------------------------


@st.composite
def paths(draw):
    """(route, target): route is the real route the target names exactly, else None."""
    kind = draw(st.sampled_from(["real", "real", "real", "mangled", "random", "long", "odd"]))
    if kind == "real":
        return draw(lab_fuzz.real_paths(ROUTES))
    if kind == "mangled":
        _, path = draw(lab_fuzz.real_paths(ROUTES))
        return None, lab_fuzz._target(draw(st.sampled_from(MANGLES))(path))
    if kind == "random":
        return None, lab_fuzz._target("/" + draw(lab_fuzz.path_texts)) + draw(lab_fuzz.queries)
    if kind == "long":
        n = draw(st.integers(1000, 7000))
        return None, draw(st.sampled_from(["/" + "a" * n, "/data/" + "k" * n, "/%41" * (n // 4)]))
    return None, draw(st.sampled_from(["/", "//", "/.", "/..", "/%", "/?", "/~", "/%2F"]))


def weighted(common: st.SearchStrategy, rare: st.SearchStrategy, one_in: int) -> st.SearchStrategy:
    """`common`, and `rare` once in `one_in` draws: with fewer examples than test_fuzz.py,
    fewer of them are spent on what refuses a request before it reaches its route (an
    unknown Expect, another site's Host, a hundred headers)."""
    return st.integers(1, one_in).flatmap(lambda n: rare if n == 1 else common)


_forge = lab_fuzz._forge
_CLAIMS = {**lab_fuzz._CLAIMS, "exp": lab_fuzz._NOW + 3600}
# Signed with the run's own secret, yet not valid: claims of the wrong type.
ODD_CLAIMS = [
    _forge({**_CLAIMS, "exp": float("inf")}),
    _forge({**_CLAIMS, "exp": str(lab_fuzz._NOW + 3600)}),
    _forge({**_CLAIMS, "sub": 5}),
    _forge({**_CLAIMS, "exp": True}),
    _forge({**_CLAIMS, "iat": "yesterday"}),
    _forge({**_CLAIMS, "nbf": lab_fuzz._NOW + 3600}),
]
FORGED = [*lab_fuzz.FORGED, *ODD_CLAIMS]
# Valid: the login service reads the token as the gateways of the lab do.
JWT_VALID = JWT_OK | {b"Bearer  {jwt}", b"BEARER {jwt}"}
ODD_AUTHORIZATIONS = [
    b"Token {jwt}",
    b"Bearer {jwt} {jwt}",
    b"Bearer {jwt}{jwt}",
    b"Bearer " + ADMIN,
    *ODD_CLAIMS,
    *(b"Bearer " + token for token in ODD_CLAIMS),
]
# A valid token one time in three: every gateway endpoint checks one first.
authorizations = weighted(
    st.one_of(lab_fuzz.authorizations, st.sampled_from(ODD_AUTHORIZATIONS)),
    st.sampled_from(sorted(JWT_VALID)),
    3,
)
# What /validate_token reads: {"token": ...} (else the Authorization header).
tokens_in_bodies = st.one_of(
    st.just({"token": "{jwt}"}),
    st.fixed_dictionaries(
        {
            "token": st.sampled_from(["", "x", "{jwt}x", "Bearer {jwt}", " {jwt}"])
            | st.sampled_from([t.decode() for t in FORGED])
            | json_values
        }
    ),
    st.dictionaries(st.sampled_from(["token", "x"]), json_values, max_size=2),
)


expects = weighted(st.sampled_from([None, None, b"100-continue"]), lab_fuzz.expects, 4)
hosts = weighted(st.none(), lab_fuzz.hosts, 4)
few_headers = st.lists(
    st.tuples(lab_fuzz.tokens.filter(lambda n: n.lower() not in SET_APART), lab_fuzz.header_values),
    max_size=8,
)
extra_headers = weighted(few_headers, lab_fuzz.extra_headers, 4)
ROUTE_BODIES = {
    "/login": lab_fuzz.logins,
    "/validate_token": tokens_in_bodies,
    "/cache/{key}": lab_fuzz.cache_sets,
    "/admin/faults": lab_fuzz.harmless_faults | lab_fuzz.bad_faults,
    "/task": json_values,
    "/longtask": json_values,
    "/report": json_values,
    "/orders": json_values,
    "/audit": json_values,
}


@st.composite
def fuzzed_requests(draw):
    port = draw(st.integers(0, len(ROLES) - 1))
    if draw(st.integers(0, 9)) < 6:  # mostly a route the replica serves, or proxies
        routes = SERVED[BEHIND.get(ROLES[port], ROLES[port])]
        work = tuple(sorted(set(routes) - set(COMMON)))
        # Mostly its work: /health, /metrics, /status and /admin/ are the same everywhere.
        choice = tuple(sorted(COMMON)) if draw(st.integers(0, 2)) == 0 else work
        route, target = draw(lab_fuzz.real_paths(choice))
        method = draw(st.sampled_from(sorted(routes[route])) | lab_fuzz.methods())
    else:
        method = draw(lab_fuzz.methods())
        route, target = draw(paths())
    body = draw(bodies(route, ROUTE_BODIES))
    headers: list[tuple[str, bytes]] = []
    for name, strategy in (
        ("Authorization", authorizations),
        ("Content-Type", lab_fuzz.content_types),
        ("X-Labsim-Exchange", lab_fuzz.exchanges),
        ("X-Request-Id", lab_fuzz.request_ids),
        ("Expect", expects),
    ):
        value = draw(strategy)
        if value is not None:
            headers.append((name, value))
    headers += draw(lab_fuzz.connections)
    headers += draw(extra_headers)
    repeatable = [name for name, _ in headers if name.lower() not in SINGLETONS]
    if repeatable and draw(st.integers(0, 9)) == 0:  # a second value after the first
        headers.append((draw(st.sampled_from(repeatable)), draw(lab_fuzz.header_values)))
    return Request(
        port=port,
        method=method,
        target=target,
        route=route,
        headers=tuple(headers),
        host=draw(hosts),
        body=body,
        chunked=bool(body.data) and draw(st.integers(0, 4)) == 0,
    )


# --- What must hold -------------------------------------------------------------------------------


def counted_on_arrival(role: str, route: str) -> bool:
    """Whether the replica's own rate limit may answer 429 before it reads the body."""
    if role not in COUNTS_ON_ARRIVAL:
        return False
    routes = COUNTS_ON_ARRIVAL[role]
    return routes is None or route in routes


def problems_with(req: Request, answer: Answer) -> list[str]:
    """What is wrong with `answer` to `req`."""
    if req.method not in KNOWN_METHODS:
        return raw_problems(answer)  # refused by the parser, before the application
    status = answer.status
    body = req.body
    if not isinstance(status, int):
        if status == "closed" and len(body.data) > MAX_BODY:
            return []  # refused before the whole body was sent
        return [f"no answer: {answer.error}"]
    problems = []
    if status >= 500 and status not in (502, 503, 504):
        problems.append(f"status {status}")
    if status >= 400 and req.method != "HEAD":
        try:
            error = json.loads(answer.body)
        except ValueError:
            error = None
        if not isinstance(error, dict) or "error" not in error:
            problems.append(f"error {status} is not JSON with an 'error' key")
    port_role = ROLES[req.port]
    route, method = req.route, req.method
    ok = 200 <= status < 300
    expect = req.header("Expect")
    size = sum(len(name) + len(value) for name, value in req.headers)
    clean = (
        req.host is None  # a Host naming another site may be refused (DNS rebinding)
        and len(req.headers) <= 32  # more may be refused (431), e.g. by a proxy
        and size <= 8192
        and (expect is None or expect.lower() == b"100-continue")
        and req.header("Upgrade") is None
        and body.encoding in (None, b"gzip")
    )
    # A 429 of the replica's own count per window, which refuses before any body is read.
    refused_first = {429} if route and counted_on_arrival(port_role, route) else set()
    proxied = port_role in BEHIND and not (route in COMMON and method in COMMON[route])
    role = BEHIND[port_role] if proxied else port_role
    if proxied and route is not None and body.size > MAX_BODY:  # the proxy reads it all
        problems += [f"a proxied body of {body.size} bytes answered {status}"] if ok else []
        if clean and status not in {413, *refused_first}:
            problems.append(f"a proxied body of {body.size} bytes answered {status}, not 413")
    routed = route is not None and method in SERVED[role].get(route, ())
    if not routed:
        return problems
    auth = req.header("Authorization")
    has_jwt, has_admin = auth in JWT_VALID, auth in ADMIN_OK
    if route.startswith("/admin/") and not has_admin:
        problems += ["/admin/ answered without the admin token"] if ok else []
        if status == 401 and "www-authenticate" not in answer.headers:
            problems.append("401 without WWW-Authenticate")
    needs_token = role == "gateway" and route in NEEDS_TOKEN
    if needs_token and not has_jwt:
        problems += [f"{route} answered without a valid token"] if ok else []
    if (role, route) == ("login", "/validate_token") and not (has_jwt or b"{jwt}" in body.data):
        problems += ["/validate_token answered without a valid token"] if ok else []
    authorized = not (
        (route.startswith("/admin/") and not has_admin) or (needs_token and not has_jwt)
    )
    reads_body = method == "POST" and ((role, route) in READS_BODY or route == "/admin/faults")
    media = media_type(req.header("Content-Type"))
    if reads_body and body.size > MAX_BODY:
        problems += [f"a body of {body.size} bytes answered {status}"] if ok else []
        if authorized and clean and status not in {413, 415, *refused_first}:
            problems.append(f"a body of {body.size} bytes answered {status}, not 413")
    elif reads_body and body.depth >= SURELY_TOO_DEEP:
        problems += [f"JSON nested {body.depth} deep answered {status}"] if ok else []
        if authorized and clean and media == "json" and status not in {400, *refused_first}:
            problems.append(f"JSON nested {body.depth} deep answered {status}, not 400")
    # Not a body of whitespace alone: labsim reads that as no body, whatever its type.
    if reads_body and body.data.strip() and media == "other":
        problems += [f"Content-Type {req.header('Content-Type')!r} answered {status}"] if ok else []
    query = req.target.partition("?")[2]
    expected = READ_ONLY.get((role, route)) or READ_ONLY.get(("*", route))
    if (
        expected
        and method in GET
        and authorized
        and clean
        and not body.data
        and "key=" not in query
        and status not in expected
    ):
        problems.append(f"a well-formed {method} {route} answered {status}, not {expected}")
    if (
        (role, route, method) in {("gateway", "/login", "POST"), ("login", "/login", "POST")}
        and body.label == "login"
        and media == "json"
        and clean
        and status not in (200, 429)
    ):
        problems.append(f"the lab's own login answered {status}, not 200 (or the login's 429)")
    small_json = body.label == "empty" or (
        body.label in ("route", "json") and media == "json" and len(body.data) < 1000
    )
    if (
        role == "gateway"
        and route in WORKS
        and has_jwt
        and clean
        and small_json
        and body.depth < MAX_DEPTH
        and status not in WORKS[route]
    ):
        problems.append(f"POST {route} with a valid token answered {status}, not {WORKS[route]}")
    return problems


def reset_faults(lab: Lab, index: int) -> None:
    """Clear the faults of replica `index` and, for a load balancer, of those behind it."""
    behind = {"edge": (1, 2), "lb-ms": (5, 6)}.get(ROLES[index], ())
    for i in (index, *behind):
        answer = send_plain(
            lab.ports[i],
            "POST",
            "/admin/reset",
            b"",
            "reset",
            Authorization=f"Bearer {ADMIN_TOKEN}",
        )
        assert answer.status == 200, f"could not reset the faults of {NAMES[i]}: {answer}"


def plain_request(
    index: int, method: str, route: str, body: Body | None = None, auth: bytes | None = b"{jwt}"
) -> Request:
    """A well-formed request, for the examples every run sends before it draws any."""
    headers = (("Authorization", auth),) if auth is not None else ()
    if body is not None:
        headers += (("Content-Type", b"application/json"),)
    return Request(
        port=index,
        method=method,
        target=route,
        route=route,
        headers=headers,
        host=None,
        body=body or plain(b"", "empty"),
        chunked=False,
    )


ORDER = json_body({"item": "fuzz", "count": 1}, "json")
# Each path through the topology, whatever hypothesis draws: through the edge, both
# gateways, lb-ms to both services (twice: round robin), the cache, the database, audit and
# the worker (enqueue, and enqueue ignoring its answer); the login's own routes; refusals.
EXAMPLES_FIRST = [
    plain_request(0, "POST", "/login", json_body(USER, "login"), auth=None),
    plain_request(0, "GET", "/data"),
    plain_request(0, "GET", "/data"),
    plain_request(0, "GET", "/data"),
    plain_request(0, "GET", "/process"),
    plain_request(0, "POST", "/orders", ORDER),
    plain_request(0, "POST", "/orders", ORDER),
    plain_request(0, "POST", "/longtask", ORDER),
    plain_request(0, "POST", "/report", ORDER),
    plain_request(1, "POST", "/report", plain(b"", "empty")),
    plain_request(2, "GET", "/data", auth=b"Bearer " + FORGED[0]),
    plain_request(0, "GET", "/data", auth=None),
    plain_request(3, "POST", "/validate_token", json_body({"token": "{jwt}"}, "route"), None),
    plain_request(3, "POST", "/validate_token", auth=b"Bearer {jwt}"),
    plain_request(3, "POST", "/validate_token", auth=b"Bearer " + ODD_CLAIMS[0]),
    plain_request(4, "POST", "/orders", json_body([[1]] * 3, "json"), auth=None),
    plain_request(5, "GET", "/data", auth=None),
    plain_request(6, "POST", "/orders", ORDER, auth=None),
    plain_request(10, "GET", "/tasks", auth=None),
]


def examples_first(test):
    for req in reversed(EXAMPLES_FIRST):  # decorators apply innermost first: keep the order
        test = example(req=req)(test)
    return test


@settings(SETTINGS, max_examples=EXAMPLES)
@given(req=fuzzed_requests())
@examples_first
def test_fuzz_every_route_of_every_kind(lab, req):
    lab.up.new_output()  # what earlier requests left is checked at the end of the module
    answer = send(lab, req)
    try:
        if answer.status == "closed":
            time.sleep(0.05)  # the server may log after it closed the connection
        problems = problems_with(req, answer) + log_problems(lab.up.new_output())
    finally:
        # Faults the fuzz could set with the admin token (a replica down, hung, flaky)
        # would change every answer after this one: cleared at once.
        if req.method == "POST" and any(ADMIN in value for _, value in req.headers):
            reset_faults(lab, req.port)
    assert not problems, f"{req!r}\n-> {answer!r}\n" + "\n".join(problems)


# --- Malformed HTTP over raw sockets ------------------------------------------------------------

# The route on each role that reads a body (test_fuzz.py's raw cases POST there with the
# admin token, which gets the body of /admin/faults read where no other route reads one).
BODY_ROUTE = {
    "edge": b"/login",
    "gateway": b"/login",
    "login": b"/validate_token",
    "lb-ms": b"/orders",
    "svc-a": b"/admin/faults",
    "svc-b": b"/orders",
    "audit": b"/admin/faults",
    "cache": b"/cache/fuzz",
    "database": b"/admin/faults",
    "worker": b"/task",
}


@pytest.mark.parametrize("index", range(len(ROLES)), ids=NAMES)
def test_malformed_http_on_every_port(lab, index):
    route = BODY_ROUTE[ROLES[index]]
    failures = []
    for name, template, half_close in RAW_CASES:
        data = template.replace(b"{route}", route)
        lab.up.new_output()
        answer = record("malformed", send_raw(lab.ports[index], data, half_close))
        if answer.status == "closed":
            time.sleep(0.05)
        problems = raw_problems(answer) + log_problems(lab.up.new_output())
        if problems:
            failures.append(f"{name}: {clip(data, 200)}\n-> {answer!r}\n" + "\n".join(problems))
    assert not failures, f"{len(failures)} malformed requests failed:\n\n" + "\n\n".join(failures)


@settings(SETTINGS, max_examples=RAW_EXAMPLES)
@given(index=st.integers(0, len(ROLES) - 1), data=lab_fuzz.junk_requests())
def test_fuzz_raw_bytes(lab, index, data):
    lab.up.new_output()
    answer = record("raw", send_raw(lab.ports[index], data, half_close=True))
    if answer.status == "closed":
        time.sleep(0.05)
    problems = raw_problems(answer) + log_problems(lab.up.new_output())
    assert not problems, f"{NAMES[index]}: {clip(data)}\n-> {answer!r}\n" + "\n".join(problems)


# --- What the fuzz found, fixed: each on a topology of its own ----------------------------------

BUGS = """
name = "fuzz-bugs"

[components.api]
kind = "gateway"
port = 0
auth = "login"
endpoints."GET /data" = [{ call = "database", path = "/db" }]
endpoints."POST /orders" = [{ call = "worker", method = "POST", path = "/task" }]
endpoints."POST /longtask" = [{ enqueue = "worker" }]

[components.login]
kind = "login"
port = 0
rate_limit = { requests = 1, window = 60, paths = ["/login"] }

[components.database]
kind = "database"
port = 0
latency = 0
rate_limit = { requests = 1, window = 60 }

[components.worker]
kind = "worker"
port = 0
task_duration = 0.01
"""


@dataclass
class Served:
    urls: dict[str, str]  # component id -> its URL
    token: str  # the one login the login service's window lets through


def call(url: str, method: str, path: str, body: bytes = b"", **headers: str) -> Answer:
    """A well-formed request to `url` (not counted in the fuzz's summary)."""
    return well_formed(urlsplit(url).port, method, path, body, **headers)


@pytest.fixture(scope="module")
def bugs(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz-bugs") / "bugs.toml"
    path.write_text(BUGS)
    with labsim.serve(path) as served:
        answer = call(served.url, "POST", "/login", json.dumps(USER).encode())
        assert answer.status == 200, answer
        yield Served(served.urls, json.loads(answer.body)["token"])


def test_a_gateway_passes_the_login_services_429_on_with_its_retry_after(bugs):
    login = json.dumps(USER).encode()
    refused = call(bugs.urls["login"], "POST", "/login", login)  # its window: one a minute
    assert refused.status == 429 and "retry-after" in refused.headers, refused
    passed = call(bugs.urls["api"], "POST", "/login", login)
    assert passed.status == 429, passed
    assert "retry-after" in passed.headers, f"{passed!r}, headers {passed.headers}"


def test_a_call_step_passes_a_429_on_with_its_retry_after(bugs):
    database = bugs.urls["database"]
    assert call(database, "GET", "/db").status in (200, 429)  # its window: one a minute
    refused = call(database, "GET", "/db")
    assert refused.status == 429 and "retry-after" in refused.headers, refused
    passed = call(bugs.urls["api"], "GET", "/data", Authorization=f"Bearer {bugs.token}")
    assert passed.status == 429, passed
    assert "retry-after" in passed.headers, f"{passed!r}, headers {passed.headers}"


# 60,002 bytes, under the 64 KiB limit; re-encoded by json.dumps (ASCII escapes: 6 bytes
# for each "é"), 180,002 bytes, over the next component's limit: steps send it as it came.
WIDE = json.dumps("\u00e9" * 30000, ensure_ascii=False).encode()


def test_a_call_step_sends_a_body_within_the_limit_on_as_it_came(bugs):
    assert len(WIDE) < MAX_BODY
    answer = call(bugs.urls["api"], "POST", "/orders", WIDE, Authorization=f"Bearer {bugs.token}")
    assert answer.status == 202, answer  # the worker's: Task queued


def test_enqueue_sends_a_body_within_the_limit_on_as_it_came(bugs):
    assert len(WIDE) < MAX_BODY
    answer = call(bugs.urls["api"], "POST", "/longtask", WIDE, Authorization=f"Bearer {bugs.token}")
    assert answer.status == 202, answer


# --- After the fuzz -----------------------------------------------------------------------------


def test_after_the_fuzz_every_component_is_up_and_nothing_logged_a_traceback(lab):
    # Last in the module: it stops `up`, to check its shutdown too.
    for index, port in enumerate(lab.ports):
        name = lab.id_of(index)
        answer = send_plain(port, "GET", "/health", b"", "health")
        assert answer.status == 200, f"{name}: {answer!r}"
        assert json.loads(answer.body)["status"] == "ok"
        answer = send_plain(port, "GET", "/status", b"", "status")
        assert answer.status == 200, f"{name}: {answer!r}"
        assert list(json.loads(answer.body)) == [name], f"{name}: {answer!r}"
    code = lab.up.stop()
    log = lab.up.output()
    tracebacks = [m.start() for m in lab_fuzz.BAD_LOG.finditer(log)]
    shown = "\n---\n".join(log[max(0, i - 300) : i + 1500] for i in tracebacks[:5])
    assert not tracebacks, f"up logged {len(tracebacks)} tracebacks, the first:\n{shown}"
    served = log.split("Press Ctrl-C to stop.", 1)[-1]  # the banner's lines are indented
    stray = lab_fuzz.GOES_ON.search(served)
    assert stray is None, (
        f"a log record of more than one line:\n{served[max(0, stray.start() - 500) :][:2000]}"
    )
    assert code == 0 and "labsim: stopped" in log, log[-2000:]
