"""The per-file statements, run on the database driver's cursor.

Why: a small file's store calls are a dozen short statements. Through
SQLAlchemy's ``Connection.execute`` each one pays for a compiled-cache lookup,
an execution context, parameter and result set-up and events: measured on a
1 KiB file, about three times what SQLite takes to run the statement itself.

What this keeps from SQLAlchemy: the SQL (each statement is a Core statement,
compiled by the engine's dialect once per set of parameter names), the
parameter and result types (``UTCDateTime``, ``PathText``, ``SafeText`` ... are
applied as their dialect would), the columns' Python-side defaults and
``onupdate`` values, and the error classes: a driver error comes out as the
``sqlalchemy.exc`` error ``Connection.execute`` would raise, so
``translated_errors`` words it the same way.

What a caller must know:
- It runs inside the caller's SQLAlchemy transaction, on that transaction's own
  driver connection: ``begin``, ``commit``, ``rollback`` and their events are
  SQLAlchemy's. The statements themselves fire no SQLAlchemy events (tests that
  count statements watch the driver: ``tests/conftest.py``'s ``statements_of``).
- A statement is compiled for the parameter names of its first use with them;
  a required parameter left out or a default only the database can compute
  raises ``ValueError`` at that first use. One with an ``IN`` list
  (``expanding``) goes through ``Connection.execute``.
- Rows come back as named tuples (``row.column``, ``row._asdict()``).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ClauseElement, Connection, Dialect, Executable
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    """One statement for one dialect and one set of parameter names."""

    sql: str
    names: tuple[str, ...]  # the parameters, in the order a positional driver wants
    positional: bool
    given: tuple[tuple[str, Processor | None], ...]  # per name: the caller's value ...
    fixed: Mapping[str, Any]  # ... or a value known when compiled (a literal, a default)
    computed: Mapping[str, Callable[[], Any]]  # ... or one computed each time (utcnow)
    row: Callable[[Iterable[Any]], tuple[Any, ...]] | None  # None: it returns no rows
    results: tuple[Processor | None, ...]


_CACHE_BOUND = 500  # more: statements built at each call, whose compiling is not kept

CacheEntry = tuple[Executable, _Compiled | None]
"""The statement (its id is the key: kept alive here) and its compiled form, or
None for one left to ``Connection.execute``."""


def _processor(bind_type: Any, dialect: Dialect) -> Processor | None:
    processor: Processor | None = bind_type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _compile(statement: Executable, keys: Sequence[str],
             dialect: Dialect) -> _Compiled | None:
    """None: a statement left to ``Connection.execute``."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    assert isinstance(compiled, SQLCompiler)
    sql = compiled.string
    names = tuple(compiled.positiontup or compiled.bind_names.values())
    lists = {name for name, bind in compiled.binds.items() if bind.expanding}
    if any(compiled.binds[name].required or name in keys for name in lists):
        return None  # an IN list given each time: its SQL depends on its length
    in_lists: dict[str, tuple[str, Any]] = {}  # a constant IN list's items: (list, value)
    if lists:  # constant IN lists, written out once
        state = compiled.construct_expanded_state(
            dict.fromkeys(name for name in names if name not in lists))
        sql, names = state.statement, tuple(state.positiontup or state.parameters)
        for name, items in state.parameter_expansion.items():
            in_lists.update((item, (name, state.parameters[item])) for item in items)
    prefetch: dict[str, Any] = {column.key: column.default
                                for column in compiled.insert_prefetch}
    prefetch.update({column.key: column.onupdate for column in compiled.update_prefetch})
    given: list[tuple[str, Processor | None]] = []
    fixed: dict[str, Any] = {}
    computed: dict[str, Callable[[], Any]] = {}
    for name in dict.fromkeys(names):
        if name in in_lists:
            parent, value = in_lists[name]
            processor = _processor(compiled.binds[parent].type, dialect)
            fixed[name] = processor(value) if processor else value
            continue
        bind = compiled.binds[name]
        processor = _processor(bind.type, dialect)
        if name in keys:
            given.append((name, processor))
        elif name in prefetch:
            default = prefetch[name]
            if default is not None and default.is_callable:
                computed[name] = _each_time(default.arg, processor)
            elif default is None or default.is_scalar:
                value = None if default is None else default.arg
                fixed[name] = processor(value) if processor else value
            else:
                raise ValueError(f"{name}: a default computed by the database is not run "
                                 "directly")
        elif bind.required:
            raise ValueError(f"{statement}: parameter {name!r} is required")
        else:
            value = bind.effective_value
            fixed[name] = processor(value) if processor else value
    columns = list(getattr(statement, "exported_columns", ()))
    row = (collections.namedtuple(  # type: ignore[attr-defined]
        "Row", [c.key for c in columns], rename=True)._make if columns else None)
    results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                    for c in columns)
    return _Compiled(sql, names, compiled.positional, tuple(given), fixed,
                     computed, row, results)


def _each_time(make: Callable[[Any], Any], processor: Processor | None) -> Callable[[], Any]:
    """A callable default's value (SQLAlchemy's wrapper of it takes an execution
    context, which a plain function such as ``utcnow`` ignores), bound as its type says."""
    if processor is None:
        return lambda: make(None)
    return lambda: processor(make(None))


class Rows:
    """A statement's rows, already fetched (the driver's cursor is free again)."""

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any | None:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"one row expected, {len(self._rows)} found")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar(self) -> Any | None:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> Rows:
        return Rows([row[0] for row in self._rows])


class DirectConnection:
    """Runs Core statements on ``connection``'s driver cursor, in its transaction.

    One per transaction; the compiled forms are kept in ``cache`` (one per
    engine, shared by the store's threads: a race compiles a statement twice,
    with the same result). The statements must live as long as the cache:
    module-level constants, built once."""

    def __init__(self, connection: Connection,
                 cache: dict[tuple[int, tuple[str, ...]], CacheEntry]) -> None:
        self.connection = connection
        self._dialect = connection.dialect
        self._cursor = connection.connection.cursor()
        self._cache = cache

    def execute(self, statement: Executable,
                params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                ) -> Rows:
        """Like ``Connection.execute``; a sequence of parameter sets runs the
        statement once each, and the rows are all of theirs."""
        if params is not None and not isinstance(params, Mapping) and not params:
            return Rows([])
        one = params if params is None or isinstance(params, Mapping) else params[0]
        keys = tuple(one or ())
        key = (id(statement), keys)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) > _CACHE_BOUND:
                self._cache.clear()
            found = self._cache[key] = (statement, _compile(statement, keys, self._dialect))
        compiled = found[1]
        if compiled is None:
            return Rows(list(self.connection.execute(statement, params)))
        if params is None or isinstance(params, Mapping):
            return Rows(self._run(compiled, params or {}))
        rows: list[Any] = []
        for each in params:
            rows.extend(self._run(compiled, each))
        return Rows(rows)

    def _run(self, compiled: _Compiled, params: Mapping[str, Any]) -> list[Any]:
        values = dict(compiled.fixed)
        for name, processor in compiled.given:
            value = params[name]
            values[name] = processor(value) if processor is not None else value
        for name, compute in compiled.computed.items():
            values[name] = compute()
        bound: Any = (tuple(values[name] for name in compiled.names) if compiled.positional
                      else values)
        try:
            self._cursor.execute(compiled.sql, bound)
            fetched = self._cursor.fetchall() if compiled.row is not None else []
        except self._dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(compiled.sql, bound, exc,
                                      self._dialect.loaded_dbapi.Error,
                                      dialect=self._dialect) from exc
        if compiled.row is None:
            return []
        make, results = compiled.row, compiled.results
        if not any(results):
            return [make(r) for r in fetched]
        return [make([p(v) if p is not None else v for p, v in zip(results, r, strict=True)])
                for r in fetched]

    def close(self) -> None:
        self._cursor.close()
