"""A registry maps a name of each kind to the object that implements it and its meaning.

One class serves every registry of the project (the engine's components, the tuning
layer's configurators).  It depends on nothing, so any layer may use it.  Built-in
entries register themselves where they are implemented; ``builtins`` imports those
modules the first time the registry is asked, so a bare ``import`` of the registry stays
cheap.  Packages add entries without editing aac-sparse through the Python entry-point
group ``entry_point_group``: every process (tuning workers included) imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class UnknownName(ValueError):
    """A name that is not registered for its kind; the message lists the choices."""


@dataclass(frozen=True)
class Entry:
    """One registered implementation.

    ``tunable`` says whether the search spaces offer it; ``traits`` are kind-specific
    facts the caller needs before calling it (e.g. that a regrowth needs gradients)."""

    kind: str
    name: str
    meaning: str
    impl: Any
    tunable: bool = True
    traits: dict[str, Any] = field(default_factory=dict)


class Registry:
    """``kind -> name -> Entry``; kinds are fixed, names are added by :meth:`register`."""

    def __init__(self, what: str, kinds: dict[str, str],
                 builtins: Callable[[], None] | None = None,
                 entry_point_group: str | None = None) -> None:
        self.what = what
        self.kinds = dict(kinds)  # kind -> what one entry of it is, in words
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in kinds}
        self._builtins = builtins
        self._group = entry_point_group
        self._loaded = False

    def register(self, kind: str, name: str, meaning: str, *, tunable: bool = True,
                 **traits: Any) -> Callable[[Any], Any]:
        """Decorator: register the decorated function or object as ``name`` of ``kind``
        (returned unchanged).  Registering a name twice is an error."""
        if kind not in self._entries:
            raise UnknownName(f"unknown {self.what} kind {kind!r}; one of "
                              f"{', '.join(self._entries)}")
        if not meaning:
            raise ValueError(f"{kind} {name!r}: a registration needs a one-line meaning")

        def add(impl: Any) -> Any:
            if name in self._entries[kind]:
                raise ValueError(f"{kind} {name!r} is already registered")
            self._entries[kind][name] = Entry(kind, name, meaning, impl, tunable, traits)
            return impl
        return add

    def unregister(self, kind: str, name: str) -> None:
        """Remove one entry (for tests and plugins that replace themselves)."""
        self._entries[kind].pop(name, None)

    @contextmanager
    def registered(self, kind: str, name: str, meaning: str, impl: Any, **kw: Any
                   ) -> Iterator[Any]:
        """``impl`` registered for the duration of a ``with`` block."""
        self._load()
        self.register(kind, name, meaning, **kw)(impl)
        try:
            yield impl
        finally:
            self.unregister(kind, name)

    # -- queries (each loads the built-ins and plugins first) ---------------------------
    def entries(self, kind: str) -> list[Entry]:
        """The entries of ``kind`` in registration order."""
        self._load()
        if kind not in self._entries:
            raise UnknownName(f"unknown {self.what} kind {kind!r}; one of "
                              f"{', '.join(self._entries)}")
        return list(self._entries[kind].values())

    def names(self, kind: str, tunable_only: bool = False) -> tuple[str, ...]:
        """Registered names of ``kind`` (only those the spaces offer, if asked)."""
        return tuple(e.name for e in self.entries(kind) if e.tunable or not tunable_only)

    def entry(self, kind: str, name: str) -> Entry:
        """The entry ``name`` of ``kind``; :class:`UnknownName` lists the choices."""
        for e in self.entries(kind):
            if e.name == name:
                return e
        raise UnknownName(f"unknown {self.kinds[kind]} {name!r}; choose one of "
                          f"{', '.join(self.names(kind))}")

    def get(self, kind: str, name: str) -> Any:
        """The implementation registered as ``name`` of ``kind``."""
        return self.entry(kind, name).impl

    def meaning(self, kind: str, name: str) -> str:
        return self.entry(kind, name).meaning

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # set first: the modules imported below register into us
        if self._builtins is not None:
            self._builtins()
        if self._group is not None:
            from importlib.metadata import entry_points

            for ep in entry_points(group=self._group):
                loaded = ep.load()  # a module registers on import; a callable is called
                if callable(loaded) and not isinstance(loaded, type):
                    loaded(self)
