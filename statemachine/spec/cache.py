"""A small cache of things built from a spec (engines), keyed by the spec's content.

Keyed by content, not identity: loading the same file twice reuses one build, and the cache never
keeps a `Spec` object alive past its bound. Bounded: the least recently used build is dropped
beyond `maxsize`, so a process that loads many specs keeps only a few engines.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from statemachine.spec.model import Spec

__all__ = ["SpecCache"]

T = TypeVar("T")


class SpecCache(Generic[T]):
    def __init__(self, build: Callable[[Spec], T], maxsize: int = 8) -> None:
        self._build = build
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(spec: Spec) -> Hashable:
        vocabulary = spec.vocabulary
        # A Spec built by hand has no digest: keyed by identity (the build keeps it alive, so the
        # id cannot be reused while cached).
        content = spec.digest or ("id", id(spec))
        return (content, vocabulary.fingerprint if vocabulary is not None else None)

    def get(self, spec: Spec) -> T:
        key = self.key(spec)
        with self._lock:
            if key in self._items:  # a cached build may be None (e.g. "no built-in requirements fit")
                self._items.move_to_end(key)
                return self._items[key]
        built = self._build(spec)  # outside the lock: building may take a while
        with self._lock:
            item = self._items.setdefault(key, built)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
            return item

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
