"""The trial store: one SQLite file per tuning run, the single source of truth of that run.

Every trial the tuner starts is written here before it runs and again when it ends, each
change in one short transaction (WAL journal, ``synchronous=FULL``), so a ``kill -9`` of the
tuner at any moment leaves a consistent file that holds every trial that had finished.
Resume reads the finished trials back (``completed()``) and marks the ones that were still
running as ``'interrupted'`` (``mark_interrupted()``).  Only the tuner process writes;
reports and dashboards open the file read-only (``TrialStore.open_readonly``) and may do so
while the tuner runs.  :mod:`aac_sparse.tuning.exports` turns a store into a pandas
DataFrame, CSV, Parquet, an Optuna study (for optuna-dashboard) or a DeepCAVE run folder.

Non-finite floats: JSON has no NaN or infinity, so inside the JSON columns (config, cost,
objectives, result, meta values) a non-finite float is written as ``{"__float__": "nan"}``
(or ``"inf"``/``"-inf"``) and read back as the float; a report value of NaN is stored as SQL
NULL (SQLite cannot hold a NaN) and read back as NaN.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aac_sparse import __version__
from aac_sparse.errors import UserError
from aac_sparse.tuning.trial import STATUSES, TrialOutcome, TrialSpec

STORE_FILENAME = "trials.sqlite"
# A study directory's plan (the study and its runs, each a run directory with a store).
STUDY_PLAN_FILENAME = "study-plan.json"
SCHEMA_VERSION = 1
STORE_FORMAT = "aac-sparse trial store"
RUNNING = "running"
INTERRUPTED = "interrupted"
ALL_STATUSES = (RUNNING, INTERRUPTED, *STATUSES)
BUSY_TIMEOUT_MS = 30_000

# Meta keys the store itself fills in on creation, and the ones the exports fall back on
# when no configuration space / objectives are passed to them.
META_FORMAT = "format"
META_CREATED = "created"
META_VERSION = "package_version"
META_CONFIGSPACE = "configspace"  # ConfigSpace serialized dict (cs.to_serialized_dict())
META_OBJECTIVES = "objectives"  # [{"name": str, "direction": "minimize" | "maximize"}, ...]

_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE trials (
    trial_id   INTEGER PRIMARY KEY,
    config_id  TEXT NOT NULL,
    config     TEXT NOT NULL,
    instance   TEXT NOT NULL,
    seed       INTEGER NOT NULL,
    budget     REAL,
    origin     TEXT NOT NULL,
    status     TEXT NOT NULL,
    cost       TEXT,
    objectives TEXT,
    result     TEXT,
    error      TEXT NOT NULL DEFAULT '',
    start      REAL,
    "end"      REAL,
    worker     TEXT NOT NULL DEFAULT '',
    host       TEXT NOT NULL DEFAULT '',
    version    TEXT NOT NULL,
    created    REAL NOT NULL
);
CREATE INDEX trials_config_id ON trials(config_id);
CREATE INDEX trials_instance ON trials(instance);
CREATE INDEX trials_status ON trials(status);
CREATE TABLE reports (
    trial_id INTEGER NOT NULL REFERENCES trials(trial_id) ON DELETE CASCADE,
    step     INTEGER NOT NULL,
    value    REAL,
    PRIMARY KEY (trial_id, step)
);
"""

_COLUMNS = (
    "trial_id", "config_id", "config", "instance", "seed", "budget", "origin", "status",
    "cost", "objectives", "result", "error", "start", "end", "worker", "host", "version",
    "created",
)
_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in _COLUMNS) + " FROM trials"


# --------------------------------------------------------------------------- JSON columns

_FLOAT_TAG = "__float__"


def json_ready(obj: Any) -> Any:
    """``obj`` as plain JSON data: numpy scalars/arrays unwrapped, non-finite floats tagged."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        return {_FLOAT_TAG: "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return json_ready(obj.tolist())
    # Anything else a target might return (a Path, a date, ...): keep its text rather than
    # lose the whole trial to a serialisation error.
    return str(obj)


def dumps(obj: Any) -> str:
    """Strict JSON text of ``obj`` with sorted keys; NaN/inf tagged so they read back."""
    return json.dumps(json_ready(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _untag(d: dict[str, Any]) -> Any:
    if len(d) == 1 and d.get(_FLOAT_TAG) in ("nan", "inf", "-inf"):
        return float(d[_FLOAT_TAG])
    return d


def loads(text: str | None) -> Any:
    """Inverse of :func:`dumps` (``None`` for SQL NULL)."""
    if text is None:
        return None
    return json.loads(text, object_hook=_untag)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class StoredTrial:
    """One row of the ``trials`` table with its JSON columns decoded.

    ``status`` is ``'running'``, ``'interrupted'`` or one of ``STATUSES``; ``cost`` is what
    the configurator was told (a float, a list of floats for several objectives, or None);
    ``reports`` holds ``(step, value)`` pairs when they were asked for, else None.
    """

    trial_id: int
    config_id: str
    config: dict[str, Any]
    instance: str
    seed: int
    budget: float | None
    origin: str
    status: str
    cost: float | list[float] | None
    objectives: dict[str, float]
    result: dict[str, Any]
    error: str
    start: float | None
    end: float | None
    worker: str
    host: str
    version: str
    created: float
    reports: tuple[tuple[int, float], ...] | None = None

    @property
    def finished(self) -> bool:
        """True when the trial ended with one of ``STATUSES``."""
        return self.status in STATUSES

    @property
    def duration(self) -> float | None:
        """Wall time in seconds, or None while it has no end."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    @property
    def spec(self) -> TrialSpec:
        """The trial as it was asked for (to re-run an interrupted one under a new id)."""
        return TrialSpec(self.trial_id, dict(self.config), self.instance, self.seed, self.budget)

    @property
    def outcome(self) -> TrialOutcome | None:
        """What came of the trial, or None while it is running or was interrupted."""
        if not self.finished:
            return None
        return TrialOutcome(self.status, dict(self.result), self.error, self.start or 0.0,
                            self.end or 0.0, self.worker, self.host)


def _row_to_trial(row: sqlite3.Row | tuple, reports: Sequence[tuple[int, float]] | None
                  ) -> StoredTrial:
    (trial_id, cfg_id, config, instance, seed, budget, origin, status, cost, objectives,
     result, error, start, end, worker, host, version, created) = row
    return StoredTrial(
        trial_id=trial_id, config_id=cfg_id, config=loads(config), instance=instance,
        seed=seed, budget=budget, origin=origin, status=status, cost=loads(cost),
        objectives=loads(objectives) or {}, result=loads(result) or {}, error=error,
        start=start, end=end, worker=worker, host=host, version=version, created=created,
        reports=None if reports is None else tuple(reports),
    )


def _report_value(value: float | None) -> float:
    return math.nan if value is None else float(value)


# --------------------------------------------------------------------------- the store


def resolve_store_path(path: str | Path) -> Path:
    """The database file for ``path``: a run directory (or a name without suffix) means
    ``<path>/trials.sqlite``; a path with a suffix (``x.sqlite``, ``x.db``) is the file."""
    path = Path(path)
    if path.is_dir() or not path.suffix:
        return path / STORE_FILENAME
    return path


class TrialStore:
    """Every trial of one tuning run in an SQLite file; one writer (the tuner), many readers.

    ``TrialStore(run_dir)`` opens or creates ``run_dir/trials.sqlite`` for writing;
    ``TrialStore.open_readonly(run_dir)`` opens an existing one for reading only.  Methods
    are safe to call from several threads of the writing process (one lock serialises them).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = resolve_store_path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._closed = False
        if readonly:
            if not self.path.is_file():
                raise UserError(
                    f"no trial store at {self.path}: give the run directory of an "
                    f"`aac-sparse tune` run (it holds {STORE_FILENAME}) or the file itself")
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._conn = self._connect(uri, uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._connect(str(self.path), uri=False)
        try:
            self._configure()
            self._check_or_create_schema()
        except BaseException:
            self._conn.close()
            raise
        self._next_id = self._max_trial_id() + 1

    @classmethod
    def open_readonly(cls, path: str | Path) -> TrialStore:
        """Open an existing store for reading only; safe while the tuner is writing it."""
        return cls(path, readonly=True)

    # ------------------------------------------------------------------ set-up

    def _connect(self, target: str, uri: bool) -> sqlite3.Connection:
        try:
            # isolation_level=None: no implicit transactions; each mutation opens its own
            # BEGIN IMMEDIATE ... COMMIT in _write().
            return sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise UserError(f"cannot open trial store {self.path}: {exc}") from exc

    def _configure(self) -> None:
        conn = self._conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.readonly:
                conn.execute("PRAGMA query_only = ON")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise UserError(
                f"{self.path} is not a trial store ({exc}); give the run directory of an "
                f"`aac-sparse tune` run or a new path") from exc
        if str(mode).lower() != "wal":
            raise UserError(f"cannot put trial store {self.path} in WAL mode (got {mode!r}); "
                            "is it on a file system without shared-memory support?")
        conn.execute("PRAGMA synchronous = FULL")

    def _check_or_create_schema(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(
                f"trial store {self.path} has schema version {version}, but this aac-sparse "
                f"{__version__} reads version {SCHEMA_VERSION} at most: open it with a newer "
                "aac-sparse")
        if version == SCHEMA_VERSION:
            return
        tables = self._conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables:
            raise UserError(f"{self.path} is an SQLite file but not a trial store; "
                            "give the run directory of an `aac-sparse tune` run or a new path")
        if self.readonly:
            raise UserError(f"{self.path} is an empty file, not a trial store")
        with self._write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for key, value in ((META_FORMAT, STORE_FORMAT), (META_CREATED, time.time()),
                               (META_VERSION, __version__)):
                conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, dumps(value)))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction: BEGIN IMMEDIATE, COMMIT on success, else ROLLBACK."""
        if self.readonly:
            raise UserError(f"trial store {self.path} was opened read-only; only the tuner "
                            "that owns the run writes to it")
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            yield self._conn

    @contextmanager
    def snapshot(self) -> Iterator[TrialStore]:
        """Reads inside this block all see one state of the file, even while the tuner
        writes (one read transaction); for reports that combine meta and trials."""
        with self._lock:
            self._check_open()
            self._conn.execute("BEGIN")
            try:
                yield self
            finally:
                self._conn.execute("COMMIT")

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"trial store {self.path} is closed")

    def _max_trial_id(self) -> int:
        with self._read() as conn:
            value = conn.execute("SELECT max(trial_id) FROM trials").fetchone()[0]
        return 0 if value is None else int(value)

    # ------------------------------------------------------------------ meta

    def set_meta(self, key: str, value: Any) -> None:
        """Record a run-level fact (scenario, space, objectives, ...) as JSON under ``key``."""
        with self._write() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                         (key, dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` when there is none."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else loads(row[0])

    def meta(self) -> dict[str, Any]:
        """All meta entries, decoded."""
        with self._read() as conn:
            rows = conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall()
        return {key: loads(value) for key, value in rows}

    # ------------------------------------------------------------------ trials: writing

    def next_trial_id(self) -> int:
        """Reserve the next trial id: larger than every id stored or handed out before
        (ids start at 1; ids reserved but never started leave gaps)."""
        with self._lock:
            trial_id = self._next_id
            self._next_id += 1
        return trial_id

    def start_trial(self, spec: TrialSpec, origin: str, worker: str = "", host: str = ""
                    ) -> None:
        """Record ``spec`` as running (before it is dispatched); its id must be new."""
        now = time.time()
        try:
            with self._write() as conn:
                conn.execute(
                    'INSERT INTO trials(trial_id, config_id, config, instance, seed, budget, '
                    'origin, status, start, worker, host, version, created) '
                    'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                    (int(spec.trial_id), spec.config_id, dumps(spec.config), str(spec.instance),
                     int(spec.seed), None if spec.budget is None else float(spec.budget),
                     origin, RUNNING, now, worker, host, __version__, now))
        except sqlite3.IntegrityError as exc:
            raise ValueError(
                f"trial {spec.trial_id} is already in {self.path}: every trial needs a new id "
                "from TrialStore.next_trial_id()") from exc
        with self._lock:
            self._next_id = max(self._next_id, int(spec.trial_id) + 1)

    def finish_trial(self, trial_id: int, outcome: TrialOutcome, objectives: dict[str, float],
                     cost: float | list[float] | None) -> None:
        """Record how a running trial ended; ``cost`` is what the configurator was told."""
        if outcome.status not in STATUSES:
            raise ValueError(f"unknown trial status {outcome.status!r}; one of {STATUSES}")
        with self._write() as conn:
            row = conn.execute("SELECT status FROM trials WHERE trial_id = ?",
                               (trial_id,)).fetchone()
            if row is None:
                raise ValueError(f"trial {trial_id} was never started in {self.path}")
            if row[0] != RUNNING:
                raise ValueError(f"trial {trial_id} is {row[0]!r}, not running: it cannot be "
                                 "finished again")
            conn.execute(
                'UPDATE trials SET status = ?, cost = ?, objectives = ?, result = ?, error = ?, '
                'start = CASE WHEN ? > 0 THEN ? ELSE start END, "end" = ?, '
                "worker = CASE WHEN ? != '' THEN ? ELSE worker END, "
                "host = CASE WHEN ? != '' THEN ? ELSE host END "
                'WHERE trial_id = ?',
                (outcome.status, None if cost is None else dumps(cost), dumps(objectives),
                 dumps(outcome.result), outcome.error, outcome.start, outcome.start,
                 outcome.end if outcome.end > 0 else time.time(), outcome.worker,
                 outcome.worker, outcome.host, outcome.host, trial_id))

    def add_report(self, trial_id: int, step: int, value: float) -> None:
        """Record an intermediate value (e.g. validation error after epoch ``step``);
        a second report for the same step replaces the first."""
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO reports(trial_id, step, value) VALUES (?, ?, ?) "
                             "ON CONFLICT(trial_id, step) DO UPDATE SET value = excluded.value",
                             (int(trial_id), int(step), float(value)))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"cannot report for trial {trial_id}: it was never started in "
                             f"{self.path}") from exc

    def mark_interrupted(self) -> list[int]:
        """On resume: mark trials left 'running' by a dead tuner as 'interrupted'; their ids."""
        with self._write() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT trial_id FROM trials WHERE status = ? ORDER BY trial_id", (RUNNING,))]
            conn.execute("UPDATE trials SET status = ?, error = ? WHERE status = ?",
                         (INTERRUPTED, "the tuner stopped while this trial was running",
                          RUNNING))
        return ids

    # ------------------------------------------------------------------ trials: reading

    def trials(self, status: str | Iterable[str] | None = None, origin: str | None = None,
               with_reports: bool = False) -> list[StoredTrial]:
        """Stored trials ordered by id, optionally only those with ``status`` / ``origin``."""
        where, args = self._filter(status, origin)
        with self._read() as conn:
            rows = conn.execute(f"{_SELECT}{where} ORDER BY trial_id", args).fetchall()
            reports: dict[int, list[tuple[int, float]]] = {}
            if with_reports and rows:
                for tid, step, value in conn.execute(
                        "SELECT trial_id, step, value FROM reports WHERE trial_id IN "
                        f"(SELECT trial_id FROM trials{where}) ORDER BY trial_id, step", args):
                    reports.setdefault(tid, []).append((step, _report_value(value)))
        return [_row_to_trial(r, reports.get(r[0], []) if with_reports else None)
                for r in rows]

    def trial(self, trial_id: int, with_reports: bool = False) -> StoredTrial:
        """One stored trial by id (KeyError when there is none)."""
        with self._read() as conn:
            row = conn.execute(f"{_SELECT} WHERE trial_id = ?", (trial_id,)).fetchone()
        if row is None:
            raise KeyError(f"no trial {trial_id} in {self.path}")
        return _row_to_trial(row, self.reports(trial_id) if with_reports else None)

    def completed(self, origin: str | None = None, with_reports: bool = False
                  ) -> list[StoredTrial]:
        """Trials that ended (any of ``STATUSES``), the ones resume replays."""
        return self.trials(STATUSES, origin, with_reports)

    def count(self, status: str | Iterable[str] | None = None) -> int:
        """Number of stored trials, optionally only those with ``status``."""
        where, args = self._filter(status, None)
        with self._read() as conn:
            return int(conn.execute(f"SELECT count(*) FROM trials{where}", args).fetchone()[0])

    def reports(self, trial_id: int) -> list[tuple[int, float]]:
        """``(step, value)`` pairs reported for a trial, by step."""
        with self._read() as conn:
            rows = conn.execute("SELECT step, value FROM reports WHERE trial_id = ? "
                                "ORDER BY step", (trial_id,)).fetchall()
        return [(step, _report_value(value)) for step, value in rows]

    @staticmethod
    def _filter(status: str | Iterable[str] | None, origin: str | None
                ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            unknown = [s for s in wanted if s not in ALL_STATUSES]
            if unknown:
                raise ValueError(f"unknown trial status {unknown}; one of {ALL_STATUSES}")
            clauses.append(f"status IN ({', '.join('?' * len(wanted))})")
            args.extend(wanted)
        if origin is not None:
            clauses.append("origin = ?")
            args.append(origin)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def integrity_check(self) -> str:
        """SQLite's own check of the file: ``'ok'`` when it is sound."""
        with self._read() as conn:
            return "\n".join(r[0] for r in conn.execute("PRAGMA integrity_check"))

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the connection (idempotent); a checkpoint folds the WAL into the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()

    def __enter__(self) -> TrialStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else "read-write"
        return f"TrialStore({str(self.path)!r}, {mode})"
