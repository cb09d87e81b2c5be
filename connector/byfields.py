"""`ByFields`, the base of the plain classes that stand in for records where the compiled build
needs a native class (`connector.member.AccountMember`, `connector.reason.Reason`): equal,
hashed and pickled by their fields, as a frozen dataclass is. Compiled with the scoring core
(setup.py's `COMPILED`); imports nothing of the project."""

from __future__ import annotations

from typing import Any


class ByFields:
    """Equality, hash and pickling by `_key()`, the instance's fields in order (which each
    subclass names). Only instances of the same class compare equal."""

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # pickled by its fields
        return (type(self), self._key())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, ByFields):
            return NotImplemented
        return self._key() == other._key()

    def __ne__(self, other: object) -> bool:  # written out: mypyc fails to derive it for
        # a subclass from an inherited `__eq__`
        if type(other) is not type(self) or not isinstance(other, ByFields):
            return NotImplemented
        return self._key() != other._key()

    def __hash__(self) -> int:
        return hash(self._key())
