"""Components registered by name, so settings and the CLI can name them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A name → factory table for one kind of component.

    >>> shapes = Registry("shape")
    >>> @shapes.register("square")
    ... class Square:
    ...     def __init__(self, side=1):
    ...         self.side = side
    >>> shapes.create("square", side=2).side
    2
    >>> shapes.create("circle")
    Traceback (most recent call last):
    ...
    ValueError: unknown shape 'circle'; choose one of: square

    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def add(factory: Callable[..., T]) -> Callable[..., T]:
            known = self._factories.get(name)
            if known is not None and known.__qualname__ != factory.__qualname__:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            if isinstance(factory, type):
                factory.name = name  # type: ignore[attr-defined]
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def factory(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``; ValueError listing the known names otherwise."""
        try:
            return self._factories[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            ) from None

    def create(self, name: str, **params: Any) -> T:
        return self.factory(name)(**params)
