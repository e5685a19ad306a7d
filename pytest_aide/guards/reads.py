"""Which tests read the target's module-level values: the guard probe's other half.

Coverage sees the target's lines run. A test that only reads a value the module holds (a
prompt template, a table, a constant) runs none of them, yet it judges every candidate that
changes that value: with coverage alone, a wrong prompt whose only catching test lives in
another file would be written. So, during the probe (on the original, untimed), a test is
also a reader of the target when

- it reads a value through the module while it runs (``prompts.TEMPLATE``): the module's
  class is swapped, for the probe only, for one that notes such reads; or
- its function's code names a global that ``from target import NAME`` bound to one of the
  module's values (checked by identity once the tests are collected).

Values are what is not callable, a class or a module: reads of functions are coverage's job.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

_MISSING = object()


def is_value(value: Any) -> bool:
    """A module-level value a test may read (not a function, class or module, not None or a
    bool, whose identity any module shares)."""
    if value is None or isinstance(value, (bool, types.ModuleType, type)):
        return False
    return not callable(value)


def code_names(code: types.CodeType) -> Iterator[str]:
    """The global names a function's code refers to, nested code (comprehensions, lambdas,
    inner functions) included."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from code_names(constant)


class TargetReads:
    """A pytest plugin for the guard probe: the tests that read the target's values."""

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name
        self.readers: set[str] = set()
        self._current: str | None = None
        self._module: types.ModuleType | None = None
        self._class: type | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        module = sys.modules.get(self.module_name)
        if module is None:
            return
        values = {name: value for name, value in vars(module).items()
                  if not name.startswith("__") and is_value(value)}
        if not values:
            return
        identities = {id(value) for value in values.values()}
        for item in session.items:
            function = getattr(item, "obj", None)
            code = getattr(function, "__code__", None)
            if code is None:
                continue
            bound = getattr(function, "__globals__", {})
            if any(id(bound.get(name, _MISSING)) in identities for name in code_names(code)):
                self.readers.add(item.nodeid)
        self._track(module, set(values))

    def _track(self, module: types.ModuleType, names: set[str]) -> None:
        tracker = self

        class ReadTracking(type(module)):  # type: ignore[misc]
            def __getattribute__(self, name: str) -> Any:
                if tracker._current is not None and name in names:
                    tracker.readers.add(tracker._current)
                return super().__getattribute__(name)

        try:
            original, module.__class__ = module.__class__, ReadTracking
        except TypeError:  # a module object of a class that cannot be swapped: coverage alone
            return
        self._module, self._class = module, original

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None):
        self._current = item.nodeid
        yield
        self._current = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        """Put the module's own class back before anything looks at the module again."""
        if self._module is not None and self._class is not None:
            self._module.__class__ = self._class
            self._module = None
