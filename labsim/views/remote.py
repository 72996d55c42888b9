"""The figures of components another process serves (`up --only`), read over HTTP as any
monitoring system would: `GET /metrics` for the traffic and the kind's own figures, and
`GET /admin/faults` (with the shared admin token) for the faults. The dashboard of one
part of a split lab shows the whole lab with them. It only reads.

Another process may answer anything, so a read is bounded: at most `MAX_METRICS` bytes
of `/metrics` and `MAX_FAULTS` of `/admin/faults`, `MAX_INTERIM` interim (1xx) answers
before the real one, `MAX_DEPTH` levels of JSON, `READ_TIMEOUT` seconds; and only counts
(finite, from 0 to `MAX_COUNT`) are taken from what the page shows. A component that
answers anything else is `Unreadable`, saying why, and none of its figures is shown.
These reads do not go through `http.HttpClient`, which reads any reply whole up to
16 MiB: here a read stops at its own bound, so a huge or endless answer costs little.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from ..components.answers import json_depth
from ..components.context import DURATION_BUCKETS
from ..components.figures import marked
from ..core.connections import Pool
from ..core.http import KEEPALIVE
from ..model.faults import check_changes
from ..model.kinds import KINDS
from ..model.rate_limit import reporting

# Seconds a remote component has to answer one read before it counts as unreachable.
READ_TIMEOUT = 2.0
# Bytes of /metrics: labsim's largest, the load balancer's with 100 gateways, is 30 KB;
# reading 256 KiB of samples costs about 12 ms a tick, 1 MiB about 50 (measured).
MAX_METRICS = 256 * 1024
MAX_FAULTS = 16 * 1024  # bytes: its /admin/faults, about 100
MAX_INTERIM = 8  # interim (1xx) answers before the real one
MAX_DEPTH = 8  # levels of JSON in /admin/faults (labsim's own: 2)
MAX_COUNT = 2**53  # the largest count the page shows exactly (a JavaScript number)
_PROBLEM = 200  # characters of an answer quoted in a problem

_SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"\\]*(?:\\.[^"\\]*)*)"')
_STATUS = re.compile(r"[1-5][0-9][0-9]")  # ASCII digits only: int() takes others too

Samples = dict[str, list[tuple[dict[str, str], float]]]


def kind_figure_classes(kind: str) -> tuple[type[Any], ...]:
    """The figures a kind reports in `/metrics`, by the same names the page reads
    in-process: its module's `FIGURES` (`kinds.py` names the module), and any more."""
    if kind not in KINDS:
        return ()
    module = import_module(f"labsim.components.{KINDS[kind].module}")
    return (module.FIGURES, *getattr(module, "MORE_FIGURES", ()))


class Unreadable(Exception):
    """A component answered something that is not its figures; the message says what."""


@dataclass(frozen=True)
class Seen:
    """What a component of another process reports: its traffic (what `snapshot.Reading`
    holds, and the requests in flight), its kind's own figures, and its faults."""

    traffic: dict[str, Any]
    figures: dict[str, int]
    faults: dict[str, Any]


def parse(text: str, names: AbstractSet[str] | None = None) -> Samples:
    """Prometheus text (as labsim writes it): name -> [(labels, value)], any float value;
    only the metrics in `names`, if given."""
    samples: Samples = defaultdict(list)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue  # a HELP or TYPE line
        name, labels, value = match.groups()
        if names is not None and name not in names:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        samples[name].append((dict(_LABEL.findall(labels or "")), number))
    return samples


def _count(name: str, value: float) -> float:
    """`value` of metric `name` if it is a count; Unreadable otherwise (NaN, ±Inf, ...)."""
    if not (math.isfinite(value) and 0 <= value <= MAX_COUNT):
        raise Unreadable(f"/metrics gives {name} = {value!r}, not a count from 0 to 2^53")
    return value


def _counts(samples: Samples, name: str) -> list[tuple[dict[str, str], float]]:
    return [(labels, _count(name, value)) for labels, value in samples.get(name, [])]


def traffic(samples: Samples) -> dict[str, Any]:
    """What `snapshot.Reading` holds, from a component's `/metrics`; Unreadable if a value
    it needs is no count."""
    by_class: dict[int, int] = defaultdict(int)
    for labels, value in _counts(samples, "labsim_http_requests_total"):
        status = labels.get("status", "")
        if _STATUS.fullmatch(status) and not reporting(labels.get("route", "")):
            by_class[int(status) // 100] += int(value)
    dropped = sum(
        int(v)
        for labels, v in _counts(samples, "labsim_http_dropped_total")
        if not reporting(labels.get("route", ""))
    )
    bounds = {labels.get("le"): int(v) for labels, v in _counts(samples, _BUCKET)}
    buckets = (*(bounds.get(str(b), 0) for b in DURATION_BUCKETS), bounds.get("+Inf", 0))
    seconds = sum(v for _, v in _counts(samples, _SUM))
    in_flight = sum(int(v) for _, v in _counts(samples, "labsim_http_requests_in_flight"))
    return {
        "requests": sum(by_class.values()),
        "client_errors": by_class[4],
        "errors": by_class[5],
        "seconds": seconds,
        "dropped": dropped,
        "buckets": buckets,
        "in_flight": in_flight,
    }


_BUCKET = "labsim_http_request_duration_seconds_bucket"
_SUM = "labsim_http_request_duration_seconds_sum"
_TRAFFIC = frozenset(
    {
        "labsim_http_requests_total",
        "labsim_http_dropped_total",
        "labsim_http_requests_in_flight",
        _BUCKET,
        _SUM,
    }
)


def kind_figures(kind: str, samples: Samples) -> dict[str, int]:
    """The kind's own figures (`components/figures.py`), read back from their metrics;
    Unreadable if one is no count."""
    out = {}
    for field, name in _kind_metrics(kind):
        values = _counts(samples, name)
        out[field] = int(sum(v for labels, v in values if "gateway" not in labels))
    return out


def _kind_metrics(kind: str) -> list[tuple[str, str]]:
    """(field, metric name) of each of the kind's own figures."""
    prefix = f"labsim_{kind}"
    return [
        (field, metric.full_name(prefix, field))
        for figures in kind_figure_classes(kind)
        for field, metric, _ in marked(figures())
    ]


def needed(kind: str) -> frozenset[str]:
    """The metrics the page reads of a component of `kind`."""
    return _TRAFFIC | {name for _, name in _kind_metrics(kind)}


def faults(body: bytes) -> dict[str, Any]:
    """The faults in a component's `/admin/faults` answer; Unreadable if it has none."""
    if json_depth(body, MAX_DEPTH) > MAX_DEPTH:
        raise Unreadable(f"/admin/faults nests deeper than {MAX_DEPTH} levels")
    try:
        answer = json.loads(body)
    except ValueError:  # a UnicodeDecodeError too
        raise Unreadable("/admin/faults is not JSON") from None
    shown = answer.get("faults") if isinstance(answer, dict) else None
    if not isinstance(shown, dict):
        raise Unreadable("/admin/faults has no faults object")
    try:
        return check_changes(shown) if shown else {}
    except ValueError as e:
        raise Unreadable(f"/admin/faults: {e}"[:_PROBLEM]) from None


class Reader:
    """Bounded reads of the components other processes serve; `headers` go with each."""

    def __init__(self, headers: Mapping[str, str] | None = None) -> None:
        self._headers = dict(headers or {})
        self._pools: dict[tuple[str, int], Pool] = {}

    async def read(self, kind: str, url: str, token: str) -> Seen | Unreadable | None:
        """What the component of `kind` at `url` reports; None if it cannot be reached or
        does not answer in time (shown as down). Faults it will not show (another admin
        token, say) are shown as none."""
        auth = {"Authorization": f"Bearer {token}"}
        try:
            # Wall time, on either clock: another process is a real socket, not simulated work.
            async with asyncio.timeout(READ_TIMEOUT):
                metrics, shown = await asyncio.gather(
                    self._get(URL(url + "/metrics"), {}, MAX_METRICS),
                    self._get(URL(url + "/admin/faults"), auth, MAX_FAULTS),
                )
        except TimeoutError:
            return None
        if not isinstance(metrics, tuple):
            return metrics
        if isinstance(shown, Unreadable):
            return shown
        status, body = metrics
        try:
            if status != 200:
                raise Unreadable(f"/metrics answered {status}")
            samples = parse(body.decode("utf-8", "replace"), needed(kind))
            seen = traffic(samples), kind_figures(kind, samples)
            return Seen(*seen, faults(shown[1]) if shown and shown[0] == 200 else {})
        except Unreadable as e:
            return e

    async def _get(
        self, url: URL, headers: dict[str, str], most: int
    ) -> tuple[int, bytes] | Unreadable | None:
        """(status, body) of `GET url`; Unreadable past `most` bytes, MAX_INTERIM interim
        answers or for what is not HTTP; None if the connection fails."""
        address = (url.host or "", url.port or 80)
        pool = self._pools.get(address)
        if pool is None:
            # Two reads at once (/metrics and /admin/faults), kept alive between ticks.
            pool = Pool(address, 2, KEEPALIVE, READ_TIMEOUT, auto_decompress=False)
            self._pools[address] = pool
        lines = [f"GET {url.raw_path_qs} HTTP/1.1", f"Host: {url.host_port_subcomponent}"]
        lines += ["Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in (self._headers | headers).items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        try:
            protocol = await pool.acquire()
        except OSError:
            return None
        reusable = False
        try:
            if protocol.transport is None:
                return None
            protocol.transport.write(head)
            answer = await _answer(protocol, url.path, most)
            reusable = not protocol.should_close
            return answer
        except Unreadable as e:
            return e
        except (aiohttp.ClientConnectionError, OSError):
            return None
        except (aiohttp.ClientError, HttpProcessingError, ValueError) as e:
            return Unreadable(f"{url.path} is not HTTP: {e or type(e).__name__}"[:_PROBLEM])
        finally:
            pool.release(protocol, reusable=reusable)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


async def _answer(protocol: ResponseHandler, path: str, most: int) -> tuple[int, bytes]:
    message, payload = await protocol.read()
    interim = 0
    while message.code < 200:  # 100 Continue, 103 Early Hints: the real answer follows
        if message.code == 101:
            raise Unreadable(f"{path} answered 101 Switching Protocols")
        interim += 1
        if interim > MAX_INTERIM:
            raise Unreadable(f"{path} sent more than {MAX_INTERIM} interim (1xx) answers")
        message, payload = await protocol.read()
    if message.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise Unreadable(f"{path} is compressed, which was not asked for")
    too_large = Unreadable(f"{path} is larger than {most:,} bytes")
    length = message.headers.get("Content-Length", "")
    if length.isascii() and length.isdigit() and int(length) > most:
        raise too_large  # not read at all
    body = bytearray()
    while chunk := await payload.readany():
        body += chunk
        if len(body) > most:
            raise too_large
    return message.code, bytes(body)
