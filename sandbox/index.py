"""Field indexes: for one table and field, the ids of the rows holding each value.

The store builds one the first time a query asks for it (a filtered list, a reference check, deleting
what hangs off a job) and keeps it current on every insert, update and delete, so a filter over 100,000
jobs reads the few thousand rows that match instead of all of them. Values must be hashable (ids,
statuses, references), and are the stored ones (ciphertext for encrypted fields).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Row = dict[str, Any]
NONE: frozenset[int] = frozenset()


class FieldIndex:
    __slots__ = ("field", "ids")

    def __init__(self, field: str, rows: Iterable[Row]):
        self.field = field
        self.ids: dict[Any, set[int]] = {}
        for row in rows:
            self.add(row)

    def add(self, row: Row) -> None:
        value = row.get(self.field)
        ids = self.ids.get(value)
        if ids is None:
            self.ids[value] = {row["ID"]}
        else:
            ids.add(row["ID"])

    def remove(self, row: Row) -> None:
        self._drop(row.get(self.field), row["ID"])

    def move(self, id_: int, old: Any, new: Any) -> None:
        if old != new:
            self._drop(old, id_)
            self.add({"ID": id_, self.field: new})

    def _drop(self, value: Any, id_: int) -> None:
        ids = self.ids.get(value)
        if ids is not None:
            ids.discard(id_)
            if not ids:  # a value no row holds any more is not "taken"
                del self.ids[value]

    def __contains__(self, value: Any) -> bool:
        return value in self.ids

    def get(self, value: Any) -> set[int] | frozenset[int]:
        return self.ids.get(value, NONE)
