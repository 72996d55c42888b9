"""Property-based fuzz of every endpoint of every component of `python -m labsim up`.

One `up` serves the whole module, on free ports, with its admin token and JWT secret from
the environment. hypothesis draws requests (component, method, path, headers, body) that
http.client sends as well-formed HTTP; malformed HTTP, fixed cases and random bytes, goes to
every port over raw sockets. What must hold:

- no answer is a 5xx other than 502, 503 or 504, and every error the application answers
  (4xx, 5xx) is JSON with an "error" key;
- malformed HTTP gets a status below 500 or a closed connection, never a 500;
- without the admin token no /admin/ route answers 2xx, without a valid JWT no gateway
  route that needs one does; well-formed requests for the read-only routes answer 200,
  whatever their X-Labsim-Exchange (ignored from outside) or X-Request-Id say;
- a route that reads a body refuses (never 2xx) a body over 64 KiB (413), JSON nested
  deeper than 32 (400), and a non-empty body whose Content-Type is not application/json (415);
- `up` never writes a traceback (malformed HTTP is one log line); after the fuzz every
  component's /health is 200 and `up` stops cleanly.

LABSIM_FUZZ_EXAMPLES sets how many requests hypothesis draws (default 300; with the 328
malformed ones, 30 random-byte ones and the set-up and clean-up requests about 700 in all,
under 10 s on a 2-core machine). The module prints a one-line summary at its end
(`pytest -s` shows it) and writes it to the file LABSIM_FUZZ_REPORT names, if set.
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import jwt as pyjwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import free_ports, write_scenario

EXAMPLES = int(os.environ.get("LABSIM_FUZZ_EXAMPLES", "300"))
RAW_EXAMPLES = max(1, EXAMPLES // 10)
TIMEOUT = 10.0  # seconds, on every connection: nothing may hang the run
MAX_BODY = 64 * 1024  # a larger body gets 413
MAX_DEPTH = 32  # JSON nested deeper gets 400
# One level of slack: whether the outermost array or object counts is the server's choice.
SURELY_TOO_DEEP = MAX_DEPTH + 2
ADMIN_TOKEN = "fuzz-admin-" + secrets.token_urlsafe(32)
SECRET = "fuzz-secret-" + secrets.token_urlsafe(48)  # so that the fuzz can forge bad JWTs
USER = {"username": "user1", "password": "password123"}

# The eight ports, in write_scenario's order, and what each one is.
KINDS = ("load_balancer", *["gateway"] * 3, "cache", "database", "worker", "microservice")
NAMES = ("lb", "gateway1", "gateway2", "gateway3", "cache", "database", "worker", "micro")

GET = frozenset({"GET", "HEAD"})  # aiohttp's add_get answers HEAD too
POST = frozenset({"POST"})
DELETE = frozenset({"DELETE"})
# Routes and methods each kind serves itself (the load balancer proxies everything else).
COMMON = {
    "/health": GET,
    "/metrics": GET,
    "/status": GET,
    "/admin/faults": GET | POST,
    "/admin/reset": POST,
}
SERVED = {
    "load_balancer": COMMON,
    "gateway": {**COMMON, "/login": POST, "/data": GET, "/longtask": POST, "/process": GET},
    "cache": {
        **COMMON,
        "/cache": GET,
        "/cache/stats": GET,
        "/cache/flush": POST,
        "/cache/{key}": GET | POST | DELETE,
    },
    "database": {**COMMON, "/db": GET},
    "worker": {**COMMON, "/task": POST, "/task/{id}": GET, "/tasks": GET},
    "microservice": {**COMMON, "/process": GET},
}
ROUTES = tuple(sorted({route for routes in SERVED.values() for route in routes}))
# (kind, route) whose POST handler reads a JSON body; /admin/faults on every kind.
READS_BODY = {
    ("gateway", "/login"),
    ("gateway", "/longtask"),
    ("cache", "/cache/{key}"),
    ("worker", "/task"),
}
NEEDS_JWT = {"/data", "/longtask", "/process"}  # on a gateway
# Well-formed requests for these answer 200 (with the credentials they need).
READ_ONLY = {
    ("*", "/health"),
    ("*", "/metrics"),
    ("*", "/status"),
    ("*", "/admin/faults"),
    ("gateway", "/data"),
    ("gateway", "/process"),
    ("database", "/db"),
    ("microservice", "/process"),
    ("cache", "/cache"),
    ("cache", "/cache/stats"),
}
# What `up` must never write: a traceback, or a log record that could not be written.
BAD_LOG = re.compile(r"Traceback \(most recent call last\)|--- Logging error ---")
# A line that goes on the record before it: a log record of more than one line.
GOES_ON = re.compile(r"^[ \t^]", re.MULTILINE)

# Every request sent and every outcome seen, for the summary at the end of the module.
SENT: Counter[str] = Counter()
OUTCOMES: Counter[object] = Counter()


# --- `up`, started once for the module ------------------------------------------------


class LoggedUp:
    """`python -m labsim up` in a subprocess, as conftest's Up, with an environment.

    Its output goes to files, not pipes: a pipe nobody reads blocks `up` once it holds
    64 KiB of access log, and the fuzz reads the log after each request.
    """

    def __init__(self, folder: Path, *args: str, env: dict[str, str]) -> None:
        self.paths = (folder / "up.stdout", folder / "up.stderr")
        self._read = [0, 0]
        with open(self.paths[0], "wb") as out, open(self.paths[1], "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "labsim", "up", *args, "--no-dashboard"],
                stdout=out,
                stderr=err,
                env={**os.environ, **env},
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.proc.poll() is None:
            if "Press Ctrl-C" in self.output():
                self.new_output()
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"up did not start:\n{self.output()}")

    def output(self) -> str:
        """Everything `up` wrote so far, stdout then stderr."""
        return "".join(p.read_bytes().decode("utf-8", "backslashreplace") for p in self.paths)

    def new_output(self) -> str:
        """What `up` wrote since the last call."""
        parts = []
        for i, path in enumerate(self.paths):
            with open(path, "rb") as f:
                f.seek(self._read[i])
                data = f.read()
            self._read[i] += len(data)
            parts.append(data.decode("utf-8", "backslashreplace"))
        return "".join(parts)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@dataclass
class Lab:
    ports: list[int]
    up: LoggedUp
    jwt: bytes

    def _repr_pretty_(self, p, cycle) -> None:  # how hypothesis prints it
        p.text(repr(self))

    def __repr__(self) -> str:
        return f"Lab({dict(zip(NAMES, self.ports, strict=True))})"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    ports = free_ports(8)
    scenario = write_scenario(folder / "fuzz.toml", ports)
    # The database quick too: /data misses are part of the fuzz.
    text = re.sub(r"(\[database\][^\[]*?latency = )[0-9.]+", r"\g<1>0.01", scenario.read_text())
    scenario.write_text(text)
    env = {
        "LABSIM_ADMIN_TOKEN": ADMIN_TOKEN,
        "LABSIM_SECRET": SECRET,
        # As on a desktop with a UTF-8 locale: a log line that cannot be encoded (a request
        # id of non-UTF-8 bytes) is an error there, where C.UTF-8 would let it through.
        "PYTHONIOENCODING": "utf-8:strict",
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
        if os.environ.get("LABSIM_FUZZ_REPORT"):
            Path(os.environ["LABSIM_FUZZ_REPORT"]).write_text(line + "\n")


def summary(seconds: float) -> str:
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(SENT.items()))
    statuses = dict(sorted(OUTCOMES.items(), key=lambda item: str(item[0]).rjust(8)))
    return (
        f"labsim fuzz: {sum(SENT.values())} requests ({kinds}) in {seconds:.1f} s, "
        f"statuses {statuses}"
    )


# --- Sending ------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | str  # "closed" (no answer) or "timeout"
    headers: dict[str, str]
    body: bytes
    error: str = ""

    def __repr__(self) -> str:
        return f"Answer({self.status}, {clip(self.body)}{', ' + self.error if self.error else ''})"


def clip(data: bytes | str, n: int = 300) -> str:
    text = repr(data[:n])
    return text + (f"... ({len(data)} in all)" if len(data) > n else "")


def record(kind: str, answer: Answer) -> Answer:
    SENT[kind] += 1
    OUTCOMES[answer.status] += 1
    return answer


def _read(conn: http.client.HTTPConnection) -> Answer:
    resp = conn.getresponse()
    return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())


def send_plain(port: int, method: str, path: str, body: bytes, kind: str, **headers: str):
    """A well-formed request, for set-up and clean-up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json", **headers})
        return record(kind, _read(conn))
    finally:
        conn.close()


# --- What the fuzz sends ------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    data: bytes
    size: int  # after Content-Encoding
    depth: int  # JSON nesting, 0 when not JSON
    encoding: bytes | None  # Content-Encoding
    label: str

    def _repr_pretty_(self, p, cycle) -> None:  # how hypothesis prints it
        p.text(repr(self))

    def __repr__(self) -> str:
        return (
            f"Body({self.label}, {len(self.data)} bytes, decoded {self.size}, "
            f"depth {self.depth}, encoding {self.encoding!r}, {clip(self.data, 120)})"
        )


@dataclass(frozen=True)
class Request:
    port: int  # index into KINDS
    method: str
    target: str  # the request line's target, ASCII
    route: str | None  # the real route it names exactly, if it does
    headers: tuple[tuple[str, bytes], ...]  # b"{jwt}" stands for the lab's token
    host: bytes | None  # None: http.client's own Host header
    body: Body
    chunked: bool

    def _repr_pretty_(self, p, cycle) -> None:  # how hypothesis prints it
        p.text(repr(self))

    def __repr__(self) -> str:
        headers = ", ".join(f"{n}: {clip(v, 80)}" for n, v in self.headers)
        return (
            f"Request({NAMES[self.port]}, {self.method} {clip(self.target, 200)}, "
            f"route {self.route}, host {self.host!r}, chunked {self.chunked}, "
            f"headers [{headers}], {self.body!r})"
        )

    def header(self, name: str) -> bytes | None:
        """The first value of header `name`: the one the server reads."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


def send(lab: Lab, req: Request) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", lab.ports[req.port], timeout=TIMEOUT)
    data = req.body.data
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
            conn.endheaders(_chunks(data), encode_chunked=True)
        else:
            if data or req.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data or None)
        answer = _read(conn)
    except TimeoutError:
        answer = Answer("timeout", {}, b"", f"no answer within {TIMEOUT:g} s")
    except (OSError, http.client.HTTPException) as e:
        answer = Answer("closed", {}, b"", repr(e))
    finally:
        conn.close()
    return record("fuzzed", answer)


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 16384):
        yield data[start : start + 16384]


# --- Strategies ---------------------------------------------------------------------------

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Bytes a header value may hold on the wire: no control characters but tab.
VALUE_BYTES = [9, *range(0x20, 0x7F), *range(0x80, 0x100)]
# Headers aiohttp's parser refuses twice (RFC 9110 singletons), plus those that frame the
# message: the fuzz sets these on purpose or not at all (the raw cases break them).
SINGLETONS = {
    "content-length",
    "content-location",
    "content-range",
    "content-type",
    "etag",
    "host",
    "max-forwards",
    "server",
    "transfer-encoding",
    "user-agent",
}
SET_APART = SINGLETONS | {"content-encoding", "expect", "connection", "upgrade", "te", "trailer"}

tokens = st.text(TOKEN_CHARS, min_size=1, max_size=24)
header_bytes = st.lists(st.sampled_from(VALUE_BYTES), max_size=60).map(bytes)
safe_texts = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=40)
header_texts = safe_texts.map(str.encode)
header_values = st.one_of(header_bytes, header_texts)

# The methods aiohttp's parser knows; it answers any other with its own plain-text 400.
KNOWN_METHODS = frozenset(
    "GET HEAD POST PUT DELETE OPTIONS PATCH TRACE COPY LOCK MKCOL MOVE PROPFIND PROPPATCH "  # noqa: SIM905
    "SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE M-SEARCH NOTIFY "
    "SUBSCRIBE UNSUBSCRIBE PURGE MKCALENDAR LINK UNLINK SOURCE QUERY".split()
)
STANDARD_METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]
# Tokens the parser does not know. Not CONNECT: it turns the connection into a tunnel.
UNKNOWN_METHODS = ["get", "Post", "FOO", "X" * 64, "DESCRIBE"]


@st.composite
def methods(draw):
    """Mostly the usual methods, then the other ones aiohttp knows, then unknown tokens."""
    choice = draw(st.integers(0, 9))
    if choice < 6:
        return draw(st.sampled_from(STANDARD_METHODS))
    if choice < 8:
        return draw(st.sampled_from(sorted(KNOWN_METHODS)))
    if choice < 9:
        return draw(st.sampled_from(UNKNOWN_METHODS))
    return draw(tokens.filter(lambda m: m.upper() != "CONNECT"))


def _target(text: str) -> str:
    """`text` as a request target: all but printable ASCII percent-encoded (UTF-8)."""
    return "".join(c if "!" <= c <= "~" else quote(c, safe="") for c in text)


path_texts = st.text(max_size=60)  # any character, control ones too
keys = st.one_of(
    st.sampled_from(["my_data", "k", "task-1", "a b", "%", "..", "\u00e9\u00e8", "x" * 300]),
    path_texts,
)
task_ids = st.one_of(st.sampled_from(["task-1", "task-2", "task-0", "task-99999"]), path_texts)
queries = st.one_of(
    st.just(""),
    st.just("?"),
    st.text(max_size=40).map(lambda q: "?" + quote(q, safe="=&")),
    st.sampled_from(["?a=1&a=2", "?%zz", "?%ff%fe", "?=&=", "?x=" + "y" * 2000]),
)


@st.composite
def real_paths(draw, routes: tuple[str, ...] = ROUTES):
    route = draw(st.sampled_from(routes))
    path = route.replace("{key}", quote(draw(keys), safe="")).replace(
        "{id}", quote(draw(task_ids), safe="")
    )
    return route, path + draw(queries)


MANGLES = (
    lambda p: p + "/",
    lambda p: p.upper(),
    lambda p: "/" + p,
    lambda p: p + "/..",
    lambda p: "/." + p,
    lambda p: p.replace("/", "/%2e/", 1),
    lambda p: "/" + p[1:].replace("/", "%2F"),
    lambda p: p + "%00",
    lambda p: p + "%0d%0aX-Injected:%20yes",
    lambda p: p + "%ff%fe",
    lambda p: p + "%",
    lambda p: p + "%zz",
    lambda p: p + ";jsessionid=1",
    lambda p: p + "#fragment",
    lambda p: "http://fuzz.example" + p,
)


@st.composite
def paths(draw):
    """(route, target): route is the real route the target names exactly, else None."""
    kind = draw(st.sampled_from(["real", "real", "real", "mangled", "random", "long", "odd"]))
    if kind == "real":
        return draw(real_paths())
    if kind == "mangled":
        _, path = draw(real_paths())
        return None, _target(draw(st.sampled_from(MANGLES))(path))
    if kind == "random":
        return None, _target("/" + draw(path_texts)) + draw(queries)
    if kind == "long":
        n = draw(st.integers(1000, 7000))
        return None, draw(st.sampled_from(["/" + "a" * n, "/cache/" + "k" * n, "/%41" * (n // 4)]))
    return None, draw(st.sampled_from(["/", "//", "/.", "/..", "/%", "/?", "/~", "/%2F"]))


def _forge(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> bytes:
    return pyjwt.encode(claims, key, algorithm=algorithm).encode()


_NOW = int(time.time())
_CLAIMS = {"sub": "user1", "username": "user1", "role": "user", "iat": _NOW}
FORGED = [
    _forge({**_CLAIMS, "exp": _NOW - 10}),  # expired
    _forge({**_CLAIMS, "exp": _NOW + 3600}, algorithm="HS512"),  # wrong algorithm
    _forge(_CLAIMS),  # no expiry
    _forge({"exp": _NOW + 3600}),  # no subject
    _forge({**_CLAIMS, "exp": _NOW + 3600}, key="x" * 32),  # wrong key
    b"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1c2VyMSIsImV4cCI6OTk5OTk5OTk5OX0.",
]
ADMIN = ADMIN_TOKEN.encode()
JWT_OK = {b"{jwt}", b"Bearer {jwt}", b"bearer {jwt}"}
ADMIN_OK = {b"Bearer " + ADMIN, b"bearer " + ADMIN}
authorizations = st.one_of(
    st.none(),
    st.sampled_from(sorted(JWT_OK | ADMIN_OK)),
    st.sampled_from(
        [
            ADMIN,
            b"Bearer x",
            b"Bearer ",
            b"Bearer",
            b"Basic dXNlcjE6cGFzc3dvcmQxMjM=",
            b"{jwt}x",
            b"Bearer {jwt}.x",
            b"Bearer " + ADMIN + b"x",
            b"Bearer " + ADMIN[:-1],
            b"\xff\xfe\xc3\x28",
            b"Bearer \xe9\xe8",
            *FORGED,
            *(b"Bearer " + token for token in FORGED),
        ]
    ),
    header_values,
)
content_types = st.one_of(
    st.none(),
    st.sampled_from([b"application/json", b"application/json; charset=utf-8"]),
    st.sampled_from(
        [
            b"text/plain",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"application/jsonx",
            b"application/xml",
            b"",
            b"APPLICATION/JSON",
            b"application/problem+json",
        ]
    ),
    header_values,
)
exchanges = st.one_of(
    st.none(),
    st.sampled_from(["0", "1", "7", "42", "18446744073709551616", "-1", "+1", " 5", "1.5"]),
    # Unicode digits: str.isdigit() says yes to all of them, int() to only some.
    st.sampled_from(["\u00b2", "\u0661\u0662\u0663", "\u0663", "\u2460", "\uff11", "1\u00b2"]),
    st.integers(0, 10**40).map(str),
    st.integers(4300, 7000).map(lambda n: "9" * n),  # past int()'s 4300 digits
    safe_texts,
).map(lambda v: v if v is None else v.encode())
request_ids = st.one_of(
    st.none(),
    header_values,
    st.sampled_from([b"", b"fuzz-1", b"\xff\xfe", b"%0d%0a", b"a\tb"]),
    st.integers(1000, 7000).map(lambda n: b"r" * n),
)
expects = st.one_of(st.none(), st.just(b"100-continue"), st.just(b"100-Continue"), header_values)
connections = st.sampled_from(
    [
        (),
        (("Connection", b"close"),),
        (("Connection", b"keep-alive"),),
        (("Connection", b"Upgrade"), ("Upgrade", b"websocket")),
        (("Connection", b"Upgrade"), ("Upgrade", b"h2c")),
    ]
)
hosts = st.one_of(
    st.none(),
    st.sampled_from([b"", b"fuzz.example", b"[::1", b"127.0.0.1:1", b"h\xc3\xa9", b"a" * 1000]),
)
extra_headers = st.lists(
    st.tuples(tokens.filter(lambda n: n.lower() not in SET_APART), header_values), max_size=8
) | st.lists(st.tuples(st.just("X-Many"), st.just(b"v")), min_size=50, max_size=100)

# --- Bodies ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=15,
)


def depth_of(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


def json_body(value: object, label: str, ascii_only: bool = True) -> Body:
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    return Body(data, len(data), depth_of(value), None, label)


def plain(data: bytes, label: str, depth: int = 0) -> Body:
    return Body(data, len(data), depth, None, label)


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes (at least 14)."""
    return b'{"value": "' + b"a" * (size - 13) + b'"}'


FAULT_KEYS = ["latency", "jitter", "error_rate", "down", "hang"]
harmless_faults = st.fixed_dictionaries(
    {},
    optional={
        "latency": st.floats(0, 0.01),
        "jitter": st.floats(0, 0.01),
        "error_rate": st.just(0.0),
        "down": st.just(False),
        "hang": st.just(False),
    },
)
bad_faults = st.dictionaries(
    st.sampled_from([*FAULT_KEYS, "unknown", ""]),
    st.sampled_from([-1, -0.0001, 1e10, 2, "1", None, [], {}, True, "yes"]),
    min_size=1,
    max_size=3,
)
logins = st.fixed_dictionaries(
    {
        "username": st.sampled_from(["user1", "", "USER1"]) | st.text(max_size=20),
        "password": st.sampled_from(["password123", ""]) | st.text(max_size=20),
    }
) | st.dictionaries(st.sampled_from(["username", "password", "x"]), json_values, max_size=3)
cache_sets = st.fixed_dictionaries(
    {"value": json_values},
    optional={
        "ttl": st.one_of(
            st.floats(), st.integers(-5, 10**12), st.text(max_size=5), st.booleans(), st.none()
        )
    },
)
ROUTE_BODIES = {
    "/login": logins,
    "/cache/{key}": cache_sets,
    "/admin/faults": harmless_faults | bad_faults,
    "/task": json_values,
    "/longtask": json_values,
}
BAD_DOCUMENTS = [
    b"{",
    b"}",
    b"[1,]",
    b"nul\x00",
    b"\xff\xfe",
    b'{"value": "\xff"}',
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    b"NaN",
    b"1e999999",
    b"-",
    b" ",
    b'{"value": ' + b"9" * 5000 + b"}",  # past int()'s 4300 digits
    b'{"username": "\\ud800", "password": "\\udfff"}',  # lone surrogates
    b'{"value": "\\udcff", "ttl": 1}',
    b'{"a": 1, "a": 2}',
    b'"string"',
    b"null",
]


@st.composite
def bodies(draw, route: str | None, route_bodies: dict | None = None):
    """A body for `route`: one of its own (`route_bodies`, the lab's by default) or any."""
    route_bodies = ROUTE_BODIES if route_bodies is None else route_bodies
    kind = draw(
        st.sampled_from(["empty", "empty", "route", "route", "json", "deep", "bad", "big", "coded"])
    )
    if kind == "empty":
        return plain(b"", "empty")
    if kind == "route" and route == "/login" and draw(st.booleans()):
        return json_body(USER, "login")  # the lab's own login, exactly
    if kind == "route" and route in route_bodies:
        return json_body(draw(route_bodies[route]), "route", draw(st.booleans()))
    if kind in ("route", "json"):
        return json_body(draw(json_values), "json", draw(st.booleans()))
    if kind == "deep":
        depth = draw(st.sampled_from([2, 31, 32, 33, 34, 40, 100, 1000, 5000]))
        data = nested(depth, draw(st.sampled_from(["array", "object"])))
        if draw(st.booleans()):  # where the cache and the worker read it
            return plain(b'{"value": ' + data + b"}", "deep", depth + 1)
        return plain(data, "deep", depth)
    if kind == "bad":
        return plain(draw(st.sampled_from(BAD_DOCUMENTS) | st.binary(max_size=64)), "bad")
    if kind == "big":
        size = draw(
            st.sampled_from([MAX_BODY - 1, MAX_BODY, MAX_BODY + 1])
            | st.integers(1000, MAX_BODY)
            | st.integers(MAX_BODY + 1, 1024 * 1024 - 1)
        )
        return plain(padded(size) if draw(st.booleans()) else b"x" * size, "big")
    # Content-Encoding: a real gzip (a small one, or one that inflates past the limit), or
    # bytes that are not what the header says.
    choice = draw(st.sampled_from(["gzip", "bomb", "lie"]))
    if choice == "lie":
        # Not br: without the Brotli package aiohttp's parser refuses it (a raw case).
        encoding = draw(st.sampled_from([b"gzip", b"deflate", b"x-fuzz", b"identity", b"GZIP"]))
        return Body(b'{"value": 1}', 12, 1, encoding, "coded")
    size = 2000 if choice == "gzip" else draw(st.integers(MAX_BODY + 1, 4 * 1024 * 1024))
    return Body(gzip.compress(padded(size)), size, 1, b"gzip", "coded")


@st.composite
def fuzzed_requests(draw):
    port = draw(st.integers(0, len(KINDS) - 1))
    if draw(st.integers(0, 9)) < 6:  # mostly a route the component serves
        kind = "gateway" if KINDS[port] == "load_balancer" else KINDS[port]
        route, target = draw(real_paths(tuple(sorted(SERVED[kind]))))
        method = draw(st.sampled_from(sorted(SERVED[kind][route])) | methods())
    else:
        method = draw(methods())
        route, target = draw(paths())
    body = draw(bodies(route))
    headers: list[tuple[str, bytes]] = []
    for name, strategy in (
        ("Authorization", authorizations),
        ("Content-Type", content_types),
        ("X-Labsim-Exchange", exchanges),
        ("X-Request-Id", request_ids),
        ("Expect", expects),
    ):
        value = draw(strategy)
        if value is not None:
            headers.append((name, value))
    headers += draw(connections)
    headers += draw(extra_headers)
    repeatable = [name for name, _ in headers if name.lower() not in SINGLETONS]
    if repeatable and draw(st.integers(0, 9)) == 0:  # a second value after the first
        headers.append((draw(st.sampled_from(repeatable)), draw(header_values)))
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


# --- What must hold -------------------------------------------------------------------------


def media_type(value: bytes | None) -> str:
    """'json', 'none', 'other', or 'unsure' where a server may take it either way."""
    if value is None:
        return "none"
    mime = value.split(b";")[0].strip().lower()
    if mime == b"application/json":
        return "json"
    if not mime or mime.endswith(b"+json"):
        return "unsure"
    return "other"


def problems_with(req: Request, answer: Answer) -> list[str]:
    """What is wrong with `answer` to `req`."""
    if req.method not in KNOWN_METHODS:
        return raw_problems(answer)  # refused by the parser, before the application
    status = answer.status
    if not isinstance(status, int):
        if status == "closed" and len(req.body.data) > MAX_BODY:
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
    kind = KINDS[req.port]
    route, method = req.route, req.method
    if kind == "load_balancer" and not (route in COMMON and method in COMMON[route]):
        kind = "gateway"  # proxied
    routed = route is not None and method in SERVED[kind].get(route, ())
    if not routed:
        return problems
    auth = req.header("Authorization")
    has_jwt, has_admin = auth in JWT_OK, auth in ADMIN_OK
    ok = 200 <= status < 300
    if route.startswith("/admin/") and not has_admin:
        problems += ["/admin/ answered without the admin token"] if ok else []
        if status == 401 and "www-authenticate" not in answer.headers:
            problems.append("401 without WWW-Authenticate")
    if kind == "gateway" and route in NEEDS_JWT and not has_jwt:
        problems += [f"{route} answered without a valid JWT"] if ok else []
        if status == 401 and "www-authenticate" not in answer.headers:
            problems.append("401 without WWW-Authenticate")
    expect = req.header("Expect")
    size = sum(len(name) + len(value) for name, value in req.headers)
    clean = (
        req.host is None  # a Host naming another site may be refused (DNS rebinding)
        and len(req.headers) <= 32  # more may be refused (431), e.g. by a proxy
        and size <= 8192
        and (expect is None or expect.lower() == b"100-continue")
        and req.header("Upgrade") is None
        and req.body.encoding in (None, b"gzip")
    )
    reads_body = method == "POST" and ((kind, route) in READS_BODY or route == "/admin/faults")
    authorized = not (
        (route.startswith("/admin/") and not has_admin)
        or (kind == "gateway" and route in NEEDS_JWT and not has_jwt)
    )
    media = media_type(req.header("Content-Type"))
    body = req.body
    if reads_body and body.size > MAX_BODY:
        problems += [f"a body of {body.size} bytes answered {status}"] if ok else []
        if authorized and clean and status not in (413, 415):
            problems.append(f"a body of {body.size} bytes answered {status}, not 413")
    elif reads_body and body.depth >= SURELY_TOO_DEEP:
        problems += [f"JSON nested {body.depth} deep answered {status}"] if ok else []
        if authorized and clean and media == "json" and status != 400:
            problems.append(f"JSON nested {body.depth} deep answered {status}, not 400")
    if reads_body and body.data and media == "other":
        problems += [f"Content-Type {req.header('Content-Type')!r} answered {status}"] if ok else []
    read_only = method in GET and ((kind, route) in READ_ONLY or ("*", route) in READ_ONLY)
    if read_only and authorized and clean and not body.data and status != 200:
        problems.append(f"a well-formed {method} {route} answered {status}, not 200")
    if (
        (kind, route, method) == ("gateway", "/login", "POST")
        and body.label == "login"
        and media == "json"
        and clean
        and status != 200
    ):
        problems.append(f"the lab's own login answered {status}, not 200")
    return problems


def log_problems(log: str) -> list[str]:
    if BAD_LOG.search(log):
        return [f"up logged a traceback:\n{log[-3000:]}"]
    if GOES_ON.search(log):
        return [f"up logged a record of more than one line:\n{log[-3000:]}"]
    return []


def reset_faults(lab: Lab, index: int) -> None:
    """Clear the faults of component `index` and of those it proxies to."""
    for i in (0, 1, 2, 3) if KINDS[index] == "load_balancer" else (index,):
        answer = send_plain(
            lab.ports[i],
            "POST",
            "/admin/reset",
            b"",
            "reset",
            Authorization=f"Bearer {ADMIN_TOKEN}",
        )
        assert answer.status == 200, f"could not reset the faults of {NAMES[i]}: {answer}"


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # every run a fresh fuzz; a failure is printed whole
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


@SETTINGS
@given(req=fuzzed_requests())
def test_fuzz_every_endpoint(lab, req):
    lab.up.new_output()  # what earlier requests left is checked at the end of the module
    answer = send(lab, req)
    try:
        if answer.status == "closed":
            time.sleep(0.05)  # the server may log after it closed the connection
        problems = problems_with(req, answer) + log_problems(lab.up.new_output())
    finally:
        # Faults the fuzz could set with the admin token (a component down, hung, flaky)
        # would change every answer after this one: cleared at once.
        if req.method == "POST" and any(ADMIN in value for _, value in req.headers):
            reset_faults(lab, req.port)
    assert not problems, f"{req!r}\n-> {answer!r}\n" + "\n".join(problems)


# --- Malformed HTTP over raw sockets ----------------------------------------------------------

# The route on each kind that reads a body; the admin token gets the body read there too.
BODY_ROUTE = {
    "load_balancer": b"/login",
    "gateway": b"/login",
    "cache": b"/cache/fuzz",
    "worker": b"/task",
    "database": b"/admin/faults",
    "microservice": b"/admin/faults",
}
RAW_POST = b"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + ADMIN + b"\r\n"
RAW_JSON = b"Content-Type: application/json\r\n"
RAW_HEALTH = b"GET /health HTTP/1.1\r\nHost: fuzz\r\n"
NOT_UTF8 = b"\xff\xfe\xc3\x28"

# (name, bytes sent as they are ({route}: the kind's BODY_ROUTE), half-close after them)
RAW_CASES = [
    ("not HTTP", b"GARBAGE\r\n\r\n", False),
    ("bad method", b"G(T /health HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("unknown method", b"FOO /health HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("non-ASCII method", b"G\xc3\x89T /health HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("bad version", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", False),
    ("no version", b"GET /health\r\n\r\n", False),
    ("space in header name", RAW_HEALTH + b"Bad Header: v\r\n\r\n", False),
    ("header without colon", RAW_HEALTH + b"NoColon\r\n\r\n", False),
    ("non-ASCII header name", RAW_HEALTH + b"X-\xff: v\r\n\r\n", False),
    ("huge header value", RAW_HEALTH + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n", False),
    ("200 headers", RAW_HEALTH + b"X-H: v\r\n" * 200 + b"\r\n", False),
    ("two Content-Types", RAW_HEALTH + b"Content-Type: a/b\r\nContent-Type: c/d\r\n\r\n", False),
    ("two Hosts", RAW_HEALTH + b"Host: fuzz\r\n\r\n", False),
    ("folded header", RAW_HEALTH + b"X-A: a\r\n b\r\n\r\n", False),
    ("HTTP/1.1 without Host", b"GET /health HTTP/1.1\r\n\r\n", False),
    ("bare LF", b"GET /health HTTP/1.1\nHost: x\n\n", False),
    ("non-UTF-8 request id", RAW_HEALTH + b"X-Request-Id: " + NOT_UTF8 + b"\r\n\r\n", False),
    (
        "non-UTF-8 token",
        b"GET /data HTTP/1.1\r\nHost: x\r\nAuthorization: " + NOT_UTF8 + b"\r\n\r\n",
        False,
    ),
    ("non-UTF-8 exchange", RAW_HEALTH + b"X-Labsim-Exchange: \xb2\xff\r\n\r\n", False),
    ("unicode digit exchange", RAW_HEALTH + b"X-Labsim-Exchange: \xc2\xb2\r\n\r\n", False),
    ("5000-digit exchange", RAW_HEALTH + b"X-Labsim-Exchange: " + b"9" * 5000 + b"\r\n\r\n", False),
    ("non-UTF-8 path", b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("NUL in path", b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("CR LF in path", b"GET /health%0d%0aX:%20y HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("absolute form", b"GET http://fuzz.example/health HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("asterisk form", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", False),
    ("CONNECT", b"CONNECT fuzz.example:443 HTTP/1.1\r\nHost: x\r\n\r\n", False),
    (
        "bad chunk size",
        RAW_POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        False,
    ),
    ("short chunk", RAW_POST + b"Transfer-Encoding: chunked\r\n\r\n10\r\n{}\r\n0\r\n\r\n", True),
    ("no last chunk", RAW_POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", True),
    ("Content-Length: abc", RAW_POST + b"Content-Length: abc\r\n\r\n{}", False),
    ("Content-Length: -1", RAW_POST + b"Content-Length: -1\r\n\r\n{}", False),
    ("two Content-Lengths", RAW_POST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", False),
    (
        "length and chunked",
        RAW_POST + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
        False,
    ),
    ("length past the body", RAW_POST + RAW_JSON + b"Content-Length: 100\r\n\r\n{}", True),
    ("length of 10^20", RAW_POST + b"Content-Length: 100000000000000000000\r\n\r\n{}", True),
    ("headers cut short", b"GET /hea", True),
    (
        "not gzip",
        RAW_POST + RAW_JSON + b"Content-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
        False,
    ),
    (
        "Content-Encoding: br",
        RAW_POST + RAW_JSON + b"Content-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
        False,
    ),
    ("unknown Expect", RAW_POST + RAW_JSON + b"Expect: fuzz\r\nContent-Length: 2\r\n\r\n{}", False),
    ("pipelined junk", RAW_HEALTH + b"\r\n\x00\x01junk\r\n\r\n", False),
]


def send_raw(port: int, data: bytes, half_close: bool) -> Answer:
    """Send `data` as it is; the first answer, or how the connection ended."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    resp = http.client.HTTPResponse(sock, method=data.split(b" ", 1)[0].decode("latin-1"))
    try:
        with contextlib.suppress(OSError):  # the server may hang up before it has all
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        resp.begin()
        return Answer(resp.status, dict(resp.getheaders()), resp.read())
    except TimeoutError:
        return Answer("timeout", {}, b"", f"no answer within {TIMEOUT:g} s")
    except (OSError, http.client.HTTPException) as e:
        return Answer("closed", {}, b"", repr(e))
    finally:
        resp.close()
        sock.close()


def raw_problems(answer: Answer) -> list[str]:
    if answer.status == "closed" or (isinstance(answer.status, int) and answer.status < 500):
        return []
    return [f"answered {answer.status}: {answer.error or clip(answer.body)}"]


@pytest.mark.parametrize("index", range(len(KINDS)), ids=NAMES)
def test_malformed_http_on_every_port(lab, index):
    route = BODY_ROUTE[KINDS[index]]
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


@st.composite
def junk_requests(draw):
    junk = st.binary(max_size=120)
    shape = draw(st.sampled_from(["junk", "line", "header"]))
    if shape == "junk":
        return draw(junk) + b"\r\n\r\n"
    if shape == "line":
        method = draw(st.sampled_from([b"GET", b"POST", b"HEAD"]) | st.binary(max_size=10))
        target = draw(st.sampled_from([b"/health", b"/login", b"/"]) | st.binary(max_size=40))
        version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2"]) | junk)
        return method + b" " + target + b" " + version + b"\r\nHost: x\r\n\r\n"
    return RAW_HEALTH + draw(junk) + b": " + draw(junk) + b"\r\n\r\n"


@settings(SETTINGS, max_examples=RAW_EXAMPLES)
@given(index=st.integers(0, len(KINDS) - 1), data=junk_requests())
def test_fuzz_raw_bytes(lab, index, data):
    lab.up.new_output()
    answer = record("raw", send_raw(lab.ports[index], data, half_close=True))
    if answer.status == "closed":
        time.sleep(0.05)
    problems = raw_problems(answer) + log_problems(lab.up.new_output())
    assert not problems, f"{NAMES[index]}: {clip(data)}\n-> {answer!r}\n" + "\n".join(problems)


# --- After the fuzz -----------------------------------------------------------------------------


def test_after_the_fuzz_every_component_is_up_and_nothing_logged_a_traceback(lab):
    # Last in the module: it stops `up`, to check its shutdown too.
    for port, name in zip(lab.ports, NAMES, strict=True):
        answer = send_plain(port, "GET", "/health", b"", "health")
        assert answer.status == 200, f"{name}: {answer!r}"
        assert json.loads(answer.body)["status"] == "ok"
    code = lab.up.stop()
    log = lab.up.output()
    tracebacks = [m.start() for m in BAD_LOG.finditer(log)]
    shown = "\n---\n".join(log[max(0, i - 300) : i + 1500] for i in tracebacks[:5])
    assert not tracebacks, f"up logged {len(tracebacks)} tracebacks, the first:\n{shown}"
    served = log.split("Press Ctrl-C to stop.", 1)[-1]  # the banner's lines are indented
    stray = GOES_ON.search(served)
    assert stray is None, (
        f"a log record of more than one line:\n{served[max(0, stray.start() - 500) :][:2000]}"
    )
    assert code == 0 and "labsim: stopped" in log, log[-2000:]
