"""The topology as a graph: named components of a kind, their replicas and ports, what each
endpoint does (its steps, in order), and so who calls whom.

A component's replicas are the processes that serve it: one per port. A component given a
`ports` list names its replicas `<name>-<port>` (the lab's `gateway-5003`), by the port the
scenario gives (`--port-offset` moves ports, never ids); one given a single `port` is one
replica named as the component. Calls name components; a load balancer spreads its calls
over the replicas of its `backends`.

Plain frozen data and graph arithmetic (order, reach, cycles); `topology.py` reads it from
a scenario and checks it, `kinds.py` says what each kind serves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .latency import LatencyModel

NO_TIME = LatencyModel.fixed(0.0)
STEP_KINDS = ("cpu", "io", "call", "read_through", "enqueue")


@dataclass(frozen=True)
class Step:
    """One thing an endpoint does.

    `cpu`: hold one of the component's slots for a draw of `time` (no slots: a delay);
    `io`: wait `time` holding nothing; `call`: `method path` on `target` (its answer is the
    endpoint's, if it is the last call); `read_through`: cache-aside on the cache `target`
    under `key`, calling `source` on a miss and filling the cache; `enqueue`: hand the
    request's body to the worker `target` as a task (the endpoint answers 202)."""

    kind: str
    target: str = ""
    method: str = "GET"
    path: str = ""
    time: LatencyModel = NO_TIME
    key: str = ""
    source: Step | None = None
    ignore_status: bool = False  # enqueue: answer 202 whatever the worker says (Lab 5)

    def targets(self) -> Iterator[str]:
        """The components this step calls, the miss's source included."""
        if self.target:
            yield self.target
        if self.source is not None:
            yield from self.source.targets()


@dataclass(frozen=True)
class Endpoint:
    """`method path` on a component, and its steps; `message` is the answer of an endpoint
    whose steps call nobody."""

    method: str
    path: str
    steps: tuple[Step, ...] = ()
    message: str = "done"

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def status(self) -> int:
        """Its answer's status when all goes well: 202 for one that hands work on."""
        return 202 if any(s.kind == "enqueue" for s in self.steps) else 200


@dataclass(frozen=True)
class Component:
    """A named component: its kind, its replicas' ports, its settings (the kind's settings
    dataclass), its endpoints, and whom it calls besides them: a load balancer's
    `backends`, a gateway's `auth` (a login component; "" checks tokens itself)."""

    name: str
    kind: str
    ports: tuple[int, ...]
    settings: Any
    endpoints: tuple[Endpoint, ...] = ()
    backends: tuple[str, ...] = ()
    auth: str = ""
    replicated: bool = False  # replicas named `<name>-<port>`, even when there is one

    def calls(self) -> list[str]:
        """The components it calls, each once, in the order it names them."""
        named = [*self.backends, *([self.auth] if self.auth else [])]
        named += [t for e in self.endpoints for s in e.steps for t in s.targets()]
        return list(dict.fromkeys(named))

    def endpoint(self, method: str, path: str) -> Endpoint | None:
        return next((e for e in self.endpoints if (e.method, e.path) == (method, path)), None)


@dataclass(frozen=True)
class Replica:
    id: str
    component: str
    port: int


@dataclass(frozen=True)
class Visit:
    """A request at `component`: served there (`step` None), or spending a cpu or io
    step's time there."""

    component: str
    step: LatencyModel | None = None


@dataclass(frozen=True)
class Graph:
    """Every component, in the order the scenario declares them."""

    components: Mapping[str, Component]
    port_offset: int = 0  # replicas' ids are by the scenario's ports, before the move
    # Worked out once: a graph is asked for the same things on every request.
    _replicas: dict[str, list[Replica]] = field(default_factory=dict, compare=False, repr=False)
    _owner: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    _calls: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)
    _callers: dict[str, list[str]] = field(default_factory=dict, compare=False, repr=False)
    _entry: list[str] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, c in self.components.items():
            if c.replicated:
                ids = [f"{name}-{p - self.port_offset if p else 0}" for p in c.ports]
            else:
                ids = [name]
            self._replicas[name] = [Replica(i, name, p) for i, p in zip(ids, c.ports, strict=True)]
            self._owner.update((i, name) for i in ids)
            self._calls[name] = [t for t in c.calls() if t in self.components]
        for name in self.components:
            self._callers[name] = [c for c in self.components if name in self._calls[c]]

    def replicas(self, name: str) -> list[Replica]:
        return self._replicas[name]

    def all_replicas(self) -> list[Replica]:
        return [r for name in self.components for r in self._replicas[name]]

    def component_of(self, replica_id: str) -> Component:
        return self.components[self._owner[replica_id]]

    def calls(self, name: str) -> list[str]:
        return self._calls[name]

    def callers(self, name: str) -> list[str]:
        return self._callers[name]

    def entries(self) -> list[str]:
        """The components nobody calls: where clients come in."""
        return [c for c in self.components if not self._callers[c]]

    def entry(self) -> str:
        """The component a client's requests go to: the first load balancer nobody calls,
        else the first component nobody calls."""
        entries = self.entries()
        balancers = [c for c in entries if self.components[c].kind == "load_balancer"]
        return (balancers or entries or list(self.components))[0]

    def cycle(self) -> list[str] | None:
        """A circle of calls (its components, the first again at the end), or None."""
        state: dict[str, int] = {}
        path: list[str] = []

        def visit(node: str) -> list[str] | None:
            state[node] = 1
            path.append(node)
            for nxt in self.calls(node):
                if state.get(nxt) == 1:
                    return [*path[path.index(nxt) :], nxt]
                if nxt not in state and (found := visit(nxt)):
                    return found
            path.pop()
            state[node] = 2
            return None

        for start in self.components:
            if start not in state and (found := visit(start)):
                return found
        return None

    def start_order(self) -> list[str]:
        """Components, callees before their callers (so nobody is called before it
        listens); otherwise in the scenario's order. Needs a graph without cycles."""
        done: dict[str, None] = {}

        def place(name: str) -> None:
            if name in done:
                return
            for callee in self.calls(name):
                place(callee)
            done[name] = None

        # Components that call nobody first, in order, as the lab has always started.
        for name in self.components:
            if not self.calls(name):
                place(name)
        for name in self.components:
            place(name)
        return list(done)

    def layers(self) -> list[list[str]]:
        """Components by depth from the entries: callers above callees (longest path)."""
        depth: dict[str, int] = {}
        for name in reversed(self.start_order()):  # callers before callees
            callers = self.callers(name)
            depth[name] = max((depth[c] + 1 for c in callers), default=0)
        rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for name in self.components:
            rows[depth[name]].append(name)
        return rows

    def of_kind(self, kind: str) -> list[str]:
        """The replicas of every component of `kind`, in the scenario's order."""
        return [
            r.id for c in self.components.values() if c.kind == kind for r in self.replicas(c.name)
        ]

    def entry_replica(self) -> str:
        """The replica a client's requests go to."""
        if not self._entry:
            self._entry.append(self.replicas(self.entry())[0].id)
        return self._entry[0]

    def reads_cache(self) -> bool:
        """Whether some endpoint reads through a cache (a `read_through` with one)."""
        return any(
            s.kind == "read_through" and s.target
            for c in self.components.values()
            for e in c.endpoints
            for s in e.steps
        )

    def route(self, method: str, path: str, hit: bool = True, start: str = "") -> list[Visit]:
        """What one request does, in order, from `start` (the entry): each component it
        visits, and each cpu or io step's time where it is spent. A load balancer passes
        it to its first backend; a gateway's token check visits its login component; a
        read through a cache visits the cache, and on a miss (`hit` False) its source and
        the cache again. Its own routes end it at any other kind."""
        name = start or self.entry()
        component = self.components[name]
        visited = [Visit(name)]
        if component.backends:
            return visited + self.route(method, path, hit, component.backends[0])
        if component.auth:
            visited.append(Visit(component.auth))
        endpoint = component.endpoint(method, path)
        for step in endpoint.steps if endpoint else ():
            if step.kind in ("cpu", "io"):
                visited.append(Visit(name, step.time))
            elif step.kind == "call":
                visited += self.route(step.method, step.path, hit, step.target)
            elif step.kind == "enqueue":
                visited.append(Visit(step.target))
            elif step.kind == "read_through":
                source = step.source
                assert source is not None
                miss = self.route(source.method, source.path, hit, source.target)
                if not step.target:
                    visited += miss
                else:
                    cache = Visit(step.target)
                    visited += [cache] if hit else [cache, *miss, cache]
        return visited

    def edges(self) -> list[tuple[str, str]]:
        """(caller, callee) between replicas: every replica of a caller to every replica
        of each component it calls, callers in start order reversed (entry first)."""
        out: list[tuple[str, str]] = []
        for name in reversed(self.start_order()):
            for a in self.replicas(name):
                out += [(a.id, b.id) for callee in self.calls(name) for b in self.replicas(callee)]
        return out
