"""Who a request that came through the load balancer is from.

A gateway behind the load balancer sees one peer, the load balancer, for every client: a
per-client limit keyed by that peer puts every client in one bucket. So the load balancer
appends the client's address to `X-Forwarded-For` and proves the header is its own with
`X-Labsim-Forwarder`, and a gateway takes the last `X-Forwarded-For` entry (the one the
load balancer added; a client may send entries of its own before it) only with that
proof. Anyone else, a client talking to a gateway directly included, is its own peer
address whatever it sends.

The proof is derived from the admin token (an HMAC, so the token itself is never sent):
the processes of a split lab already share that token (`up --only` requires it), and
one that does not know it cannot forge the proof.
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web
from multidict import CIMultiDict

FORWARDED_FOR = "X-Forwarded-For"
FORWARDER = "X-Labsim-Forwarder"


def proof(admin_token: str) -> str:
    """The value of `X-Labsim-Forwarder` the load balancer sends, for this lab."""
    return hmac.new(admin_token.encode(), b"labsim load balancer", hashlib.sha256).hexdigest()


def forward(headers: CIMultiDict[str], client: str | None, proven: str | None) -> None:
    """Add `client` to `headers` (going to a gateway), with the proof `proven` if any."""
    headers.popall(FORWARDER, None)  # a client's own goes no further
    if client:
        headers.add(FORWARDED_FOR, client)
        if proven:
            headers[FORWARDER] = proven


def client_address(request: web.Request, expected: str) -> str | None:
    """The address of the client `request` is for: the one the load balancer forwarded,
    if it carries the load balancer's proof, else the peer's own."""
    given = request.headers.get(FORWARDER, "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected.encode()):
        return request.remote
    entries = request.headers.getall(FORWARDED_FOR, [])
    last = entries[-1].rsplit(",", 1)[-1].strip() if entries else ""
    return last or request.remote
