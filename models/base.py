"""Database proxy, base model, fixed-point fields and the write-transaction helpers."""
import contextlib
import contextvars
import datetime
import fcntl
import functools
import os
import threading
import time
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP

from peewee import (AutoField, BigIntegerField, BooleanField, CharField, DatabaseProxy, DateField, DateTimeField,
                    ForeignKeyField, IntegerField, Model, ModelCursorWrapper, ModelObjectCursorWrapper, Node,
                    PostgresqlDatabase, SelectBase, SqliteDatabase, TextField)
from playhouse.db_url import connect
from playhouse.pool import PooledSqliteDatabase

db = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 30000,
    "cache_size": -64000,
}


def make_database(url):
    """A connection pool for the database named by a URL: sqlite:///path or postgresql://…

    Requests take a connection at start and give it back at teardown; pooled SQLite connections
    keep their pragmas and spare the WAL checkpoint that closing the last connection would cost.
    """
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ":memory:"
        return PooledSqliteDatabase(path, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE", max_connections=64,
                                    stale_timeout=600, timeout=30, check_same_thread=False)
    scheme, rest = url.split("://", 1)
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+pool"
    return connect(f"{scheme}://{rest}", max_connections=32, stale_timeout=600, timeout=30)


_UNBOUND = object()
_COMPILING = threading.local()


class Param(Node):
    """A named placeholder in a prepared query: its value is given each time the query runs.

    The value goes through the converter of the field it is compared with or assigned to
    (or `converter`), exactly as peewee would have converted a literal value. Given a `value`,
    the same condition also works in ordinary (not prepared) queries.
    """

    def __init__(self, name, value=_UNBOUND, converter=None):
        super().__init__()
        self.name, self.bound, self.converter = name, value, converter

    def __sql__(self, ctx):
        if not getattr(_COMPILING, "prepared", False):
            if self.bound is _UNBOUND:
                raise ValueError(f"Param {self.name!r} has no value outside a prepared query")
            return ctx.value(self.bound, self.converter)
        ctx._values.append(_Slot(self.name, self.converter or ctx.state.converter))
        return ctx.literal(ctx.state.param or "?")


class _Slot:
    __slots__ = ("name", "converter")

    def __init__(self, name, converter):
        self.name, self.converter = name, converter

    def value(self, values):
        value = values[self.name]
        return self.converter(value) if self.converter and value is not None else value


_PREPARED = {}


def prepared(key, build, **values):
    """Run the query that `build()` makes, compiled to SQL only once per database kind and `key`.

    Building SQL is most of what peewee spends on the board's hot paths (a move runs a dozen short
    queries); a prepared query keeps the SQL and re-runs it with new `values` for its Param()s.
    SELECTs give peewee's usual results (model instances, joins, dicts); UPDATE / DELETE give the
    number of rows affected, INSERT the new row's id.
    """
    database = db.obj
    entry = _PREPARED.get((type(database), key))
    if entry is None:
        query = build()
        _COMPILING.prepared = True
        try:
            sql, params = query.sql()
        finally:
            _COMPILING.prepared = False
        entry = _PREPARED[(type(database), key)] = [query, sql, params, isinstance(query, SelectBase), None, None]
    query, sql, params, is_select, columns, builder = entry
    cursor = database.execute_sql(sql, [p.value(values) if isinstance(p, _Slot) else p for p in params])
    if not is_select:
        return query.handle_result(database, cursor)
    if builder:
        return builder(cursor)
    rows = query._get_cursor_wrapper(cursor)
    if columns is not None:
        rows.__dict__.update(columns)
        rows.initialized = True
    else:
        _keep_column_mapping(rows, entry)
    return rows


def _keep_column_mapping(rows, entry):
    """Remember what peewee works out from the first result's columns (names, fields, converters,
    joins): the same SQL always gives the same columns, so later runs skip that work."""
    before = dict(rows.__dict__)
    initialize = rows.initialize

    def initialize_and_keep():
        initialize()
        entry[4] = {name: value for name, value in rows.__dict__.items()
                    if name != "initialize" and (name not in before or before[name] is not value)}
        entry[5] = _row_builder(rows)
    rows.initialize = initialize_and_keep


def _row_builder(rows):
    """A function making the result rows' records the way peewee's cursor wrapper `rows` does, without
    its general machinery (a deal's row of 28 columns in 17 instead of 30 microseconds; a card's row
    with its joined names and next activity in half the time) — or False where there is none: results
    other than model instances, or of one model's fields or of plain joins."""
    if type(rows) is ModelObjectCursorWrapper:
        if not rows.is_model or rows.constructor is not rows.model:
            return False
        names = tuple(rows.unique_columns)
        fields = rows.model._meta.fields
        if len(set(names)) != len(names) or any(name not in fields for name in names):
            return False
        natives = tuple(_native_type(fields[name]) for name in names)
        return functools.partial(_instances, model=rows.model, names=names, converters=tuple(rows.converters),
                                 natives=natives)
    if type(rows) is ModelCursorWrapper:
        if any(not is_model for _, _, is_model in rows._constructor_list):
            return False
        spec = []
        for idx, key, column, converter in rows._row_spec:
            model = rows.key_to_constructor.get(key, (rows.model,))[0]
            field = model._meta.fields.get(column)
            spec.append((idx, key, column, field is not None, converter, _native_type(field) if field else None))
        return functools.partial(_joined_instances, root=rows.model, constructors=tuple(
            (key, model) for key, model, _ in rows._constructor_list), spec=tuple(spec),
            links=tuple(rows.src_to_dest), reachable=dict(rows._dest_reachable))
    return False


# The Python type a field's value already has when a driver returns it so (psycopg2 returns dates and
# booleans, sqlite3 text and integers): converting it would change nothing, so it is not converted.
_NATIVE_TYPES = {CharField: str, TextField: str, IntegerField: int, BigIntegerField: int, AutoField: int,
                 BooleanField: bool, DateField: datetime.date, DateTimeField: datetime.datetime}


def _native_type(field):
    if type(field) is ForeignKeyField:
        return _native_type(field.rel_field)
    return _NATIVE_TYPES.get(type(field))  # (exact classes: a subclass may convert differently)


def _new(model):
    instance = model.__new__(model)
    instance.__data__, instance._dirty, instance.__rel__ = {}, set(), {}
    return instance


def _joined_instances(cursor, root, constructors, spec, links, reachable):
    """Records with their joined records, as peewee's ModelCursorWrapper.process_row makes them."""
    try:
        for row in cursor:
            objects = {key: _new(model) for key, model in constructors}
            default = objects[root]
            set_keys = set()
            for idx, key, column, is_field, convert, native in spec:
                instance = objects.get(key, default)
                value = row[idx]
                if value is not None:
                    set_keys.add(key)
                if convert is not None and not (native is not None and (value is None or type(value) is native)):
                    value = convert(value)
                if is_field:
                    instance.__data__[column] = value
                else:
                    setattr(instance, column, value)
            for src, attr, dest, _, is_outer, is_fk in links:
                instance = objects.get(src)
                joined = objects.get(dest)
                if joined is None and dest not in objects:
                    continue
                assign = dest not in set_keys and dest in reachable and bool(reachable[dest] & set_keys)
                if dest not in set_keys and not assign:
                    if not is_outer:
                        continue
                    joined = None
                if src not in set_keys and dest not in set_keys and is_outer:
                    continue
                if is_fk and joined is None:
                    instance.__rel__[attr] = None  # (peewee: a verified-absent row, the key kept)
                else:
                    setattr(instance, attr, joined)
            for instance in objects.values():
                instance._dirty.clear()
            yield objects[root]
    finally:
        cursor.close()


def _instances(cursor, model, names, converters, natives):
    """Model instances from rows of `names` (as peewee makes them: converted values, nothing dirty)."""
    new = model.__new__
    try:
        for row in cursor:
            instance = new(model)
            instance.__data__ = {
                name: value if convert is None or (native is not None and (value is None or type(value) is native))
                else convert(value) for name, convert, native, value in zip(names, converters, natives, row)}
            instance._dirty = set()
            instance.__rel__ = {}
            yield instance
    finally:
        cursor.close()


def insert_row(instance):
    """INSERT a new model instance with the fields it holds (a prepared query); returns its id."""
    cls = type(instance)
    fields = cls._meta.fields
    names = tuple(sorted(name for name in instance.__data__ if name in fields))
    return prepared((cls, "insert", names), lambda: cls.insert(
        {fields[name]: Param(name, converter=fields[name].db_value) for name in names}),
        **{name: instance.__data__[name] for name in names})


def first(rows):
    """The first row of a prepared SELECT, or None."""
    for row in rows:
        return row
    return None


def is_postgres():
    """True when the bound database is PostgreSQL (row locks are available)."""
    return isinstance(db.obj, PostgresqlDatabase)


class _WriterLock:
    """One writer at a time on an SQLite file, across threads and processes (gunicorn workers).

    SQLite refuses a second BEGIN IMMEDIATE while one is open, and its busy handler then sleeps and
    polls (1, 2, 5, 10 ms…), so two workers writing at once lose milliseconds per collision. A
    blocking flock() on a file beside the database queues writers instead and wakes the next one
    the moment the lock is released; SQLite's busy timeout stays as the fallback for other writers.
    """

    def __init__(self, path):
        self.path = path + "-writelock"
        self.threads = threading.Lock()
        self.fd, self.pid = None, None

    def __enter__(self):
        self.threads.acquire()
        try:
            if self.pid != os.getpid():  # a forked worker must not share its parent's lock file
                self.fd, self.pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise
        return self

    def __exit__(self, *exc):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


_WRITER_LOCKS = {}


def _writer_lock():
    database = db.obj
    if not isinstance(database, SqliteDatabase) or database.database in ("", ":memory:"):
        return None
    path = os.path.abspath(database.database)
    lock = _WRITER_LOCKS.get(path)
    if lock is None:
        lock = _WRITER_LOCKS.setdefault(path, _WriterLock(path))
    return lock


@contextlib.contextmanager
def write_transaction():
    """One write transaction: BEGIN IMMEDIATE on SQLite (writers queued by a file lock), a plain
    transaction on PostgreSQL (rows locked by get_locked). Nested calls become savepoints."""
    outermost = not db.in_transaction()
    lock = _writer_lock() if outermost else None
    if lock is None:
        with db.atomic() as transaction:
            yield transaction
    else:
        with lock, db.atomic() as transaction:
            yield transaction
    scope = _lock_free_scope.get()
    if outermost and scope is not None:
        scope.committed = True


# ----- slow work kept out of the write lock -------------------------------------------------------

RETRIES_FOR_SLOW_WORK = 4
_lock_free_scope = contextvars.ContextVar("lock_free_scope", default=None)


class SlowWorkFirst(Exception):
    """Raised inside a write transaction that needs the result of slow work not done yet: the
    transaction rolls back (nothing was written) and `slow_work_outside_lock` does the work with
    no lock held, then runs the operation again."""

    def __init__(self, key, work):
        super().__init__(key)
        self.key, self.work = key, work


class _LockFreeScope:
    def __init__(self):
        self.results = {}
        self.committed = False  # a write transaction of this operation committed: no more retries
        self.in_place = False   # the retries ran out: do the work where it is asked for


def done_outside_lock(key, work):
    """`work()`, a slow function of `key` alone (a PDF render of a document source), for use inside a
    write transaction.

    Under `slow_work_outside_lock` the first call raises SlowWorkFirst; the work is then done with no
    lock held and the retried operation finds its result here (when the records did not change in
    between, the key is the same). Elsewhere the work is simply done now."""
    scope = _lock_free_scope.get()
    if scope is not None and key in scope.results:
        return scope.results[key]
    if scope is None or scope.committed or scope.in_place or not db.in_transaction():
        return work()
    raise SlowWorkFirst(key, work)


def slow_work_outside_lock(operation):
    """Decorator of model operations whose write transaction may need slow work (freezing a document's
    PDF takes 0.1–0.5 s; a write lock held that long stalls every other writer, on SQLite the whole
    database). Called outermost, the operation is tried; when it reaches work not done yet it rolls
    back, the work is done with no lock held, the model instances it was given are put back as they
    were, and it runs again, up to RETRIES_FOR_SLOW_WORK times before doing the work under the lock.
    Nested calls, and calls inside a transaction begun elsewhere, run as they are.

    The contract of a decorated operation: it writes only inside write_transaction (a commit ends the
    retries: work asked for later is done where it is asked), and it re-reads under the lock every
    record it changes (reload_locked / get_locked), as every write of this app does anyway."""

    @functools.wraps(operation)
    def run(*args, **kwargs):
        if _lock_free_scope.get() is not None or db.in_transaction():
            return operation(*args, **kwargs)
        instances = [value for value in (*args, *kwargs.values()) if isinstance(value, BaseModel)]
        saved = [(dict(i.__data__), set(i._dirty), dict(i.__rel__)) for i in instances]
        scope = _LockFreeScope()
        token = _lock_free_scope.set(scope)
        try:
            for _ in range(RETRIES_FOR_SLOW_WORK):
                try:
                    return operation(*args, **kwargs)
                except SlowWorkFirst as wanted:
                    outside = _lock_free_scope.set(None)  # the work itself is not part of the operation
                    try:
                        scope.results[wanted.key] = wanted.work()
                    finally:
                        _lock_free_scope.reset(outside)
                    for instance, (data, dirty, rel) in zip(instances, saved):
                        instance.__data__, instance._dirty, instance.__rel__ = dict(data), set(dirty), dict(rel)
            scope.in_place = True
            return operation(*args, **kwargs)
        finally:
            _lock_free_scope.reset(token)
    return run


_clock = contextvars.ContextVar("clock", default=None)


def now():
    """Current UTC time without tzinfo (stored as such on both databases); inside `clock_at`, that moment."""
    return _clock.get() or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


@contextlib.contextmanager
def clock_at(moment):
    """Let `now()` and `today()` say `moment` (never later than the real time) meanwhile: the demo company
    plays its history this way, so the records it writes and the documents it renders and freezes carry
    the dates of its story (a quote sent on 19 November is dated 19 November in its PDF too)."""
    real = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    token = _clock.set(min(moment.replace(microsecond=0), real))
    try:
        yield
    finally:
        _clock.reset(token)


def today():
    """Today's date (UTC)."""
    return now().date()


class FixedDecimalField(BigIntegerField):
    """A Decimal stored as an integer count of 10**-places units (money, percentages, quantities)."""

    def __init__(self, places=2, *args, **kwargs):
        self.places = places
        self.quantum = Decimal(1).scaleb(-places)
        super().__init__(*args, **kwargs)

    def db_value(self, value):
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("floats are not accepted for fixed-point values")
        value = Decimal(value).quantize(self.quantum, rounding=ROUND_HALF_UP)
        return int(value.scaleb(self.places))

    def python_value(self, value):
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.places).quantize(self.quantum)


class MoneyField(FixedDecimalField):
    """Money: Decimal in Python, integer minor units (cents) in the database."""

    def __init__(self, *args, **kwargs):
        super().__init__(2, *args, **kwargs)


class PercentField(FixedDecimalField):
    """A percentage with two decimals (19.00 %), stored as integer hundredths."""

    def __init__(self, *args, **kwargs):
        super().__init__(2, *args, **kwargs)


class QuantityField(FixedDecimalField):
    """A quantity with three decimals (1.5 hours), stored as integer thousandths."""

    def __init__(self, *args, **kwargs):
        super().__init__(3, *args, **kwargs)


_GROUPING = "'\u2019"  # apostrophes group thousands (1'250.50); so do commas or points beside the other one


def _digits(text):
    return text.isascii() and text.isdigit()


def _as_plain_number(text, places):
    """Typed number text as Decimal reads it: thousands separators taken out, a decimal comma made a point.
    With a comma and a point, the last one is the decimal mark (1,250.50 and 1.250,50). A lone comma or point
    before exactly three digits could group thousands (documents print 1,150.00) or mark decimals (1,150 in
    German, 1.150 in English): refused as ambiguous, unless the field keeps three decimals, where a point is
    the decimal mark (2.125 h). Otherwise a lone comma or point marks decimals (12,5). Several commas or
    points group thousands (1,250,000); so do apostrophes (1'250.50). Groups must be three digits."""
    if not all(ch.isascii() and (ch.isdigit() or ch in "+-,." + _GROUPING) for ch in text):
        raise ValueError("Enter a number such as 1250.50.")  # no letters, exponents or non-ASCII digits
    marks = {ch for ch in text if ch in ",." + _GROUPING}
    if not marks:
        return text
    sign = text[:1] if text[:1] in "+-" else ""
    body = text[len(sign):]
    decimal = None
    if "," in marks and "." in marks:
        decimal = max(",.", key=body.rfind)
    else:
        lone = [mark for mark in ",." if body.count(mark) == 1]
        if lone:
            decimal = lone[0]
            whole, fraction = body.split(decimal)
            if len(fraction) == 3 and _digits(fraction) and 1 <= len(whole) <= 3 and _digits(whole) \
                    and whole.strip("0") and not marks & set(_GROUPING) and not (decimal == "." and places >= 3):
                point = Decimal(f"{whole}.{fraction}").normalize()
                if -point.as_tuple().exponent > places:
                    raise ValueError(f"Use at most {places} decimal places (for {sign}{whole}{fraction}, write "
                                     "it without the separator).")
                raise ValueError(f"{text} could be {sign}{whole}{fraction} or {sign}{point}: write "
                                 f"{sign}{whole}{fraction} without a separator, or {sign}{point} with a point "
                                 "for the decimals.")
    whole, _, fraction = body.rpartition(decimal) if decimal else (body, "", None)
    if decimal and body.count(decimal) > 1 or fraction is not None and fraction and not _digits(fraction):
        raise ValueError("Enter a number such as 1250.50.")
    grouping = {ch for ch in whole if ch in ",." + _GROUPING}
    if grouping:
        groups = whole.split(grouping.pop()) if len(grouping) == 1 else []
        if not groups or not (1 <= len(groups[0]) <= 3) or any(len(g) != 3 for g in groups[1:]) \
                or not all(_digits(g) for g in groups):
            raise ValueError("Enter a number such as 1250.50.")
        whole = "".join(groups)
    return sign + (whole if fraction is None else f"{whole}.{fraction}")


def _without_currency(text):
    """'€1,150.00' or '1150 EUR' (an amount copied from a document) without its currency symbol or code."""
    from .money import CURRENCY_SYMBOLS
    for mark in sorted({*CURRENCY_SYMBOLS, *CURRENCY_SYMBOLS.values()}, key=len, reverse=True):
        if text.startswith(mark):
            return text[len(mark):]
        if text.endswith(mark):
            return text[:-len(mark)]
    return text


def parse_decimal(text, places=2, minimum=None, maximum=None):
    """Parse user input into a Decimal with `places` decimals; ValueError with a human message. Typed text
    may group thousands and use a decimal comma (see _as_plain_number) but may not have more decimals than
    the field keeps (0.0725 is not silently made 0.07); Decimals from code are rounded half-up."""
    typed = isinstance(text, str)
    if isinstance(text, Decimal):
        value = text
    elif isinstance(text, int) and not isinstance(text, bool):
        value = Decimal(text)
    elif typed:
        cleaned = _without_currency(text.strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", ""))
        if not cleaned:
            raise ValueError("Enter a number.")
        if len(cleaned) > 20:
            raise ValueError("That number is too long.")
        try:
            value = Decimal(_as_plain_number(cleaned, places))
        except (InvalidOperation, ValueError) as exc:
            raise ValueError(str(exc) if isinstance(exc, ValueError) else "Enter a number such as 1250.50.") \
                from None
    else:
        raise ValueError("Enter a number.")
    if not value.is_finite():
        raise ValueError("Enter a finite number.")
    if value.adjusted() > 12:
        raise ValueError("That number is too large.")
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    if typed and rounded != value:
        raise ValueError("Enter a whole number." if places == 0 else
                         f"Use at most {places} decimal place{'s' if places > 1 else ''}.")
    value = rounded
    if minimum is not None and value < minimum:
        raise ValueError(f"Must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"Must be at most {maximum}.")
    return value


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False

    @classmethod
    def select_without(cls, *names):
        """A select of every column but the named ones (e.g. stored PDF bytes on list and panel queries)."""
        return cls.select(*[f for f in cls._meta.sorted_fields if f.name not in names])

    def joined_rows(self):
        """The related rows that came with this one through a join, by foreign-key name."""
        return dict(self.__rel__)

    def reattach(self, joined):
        """Give back rows that came through a join (`joined_rows()`) and were dropped by a reload, where
        this row still points at them: e.g. the names a card shows, after a move re-read the record."""
        for name, row in joined.items():
            if name not in self.__rel__ and self.__data__.get(name) == getattr(row, "id", None):
                self.__rel__[name] = row
        return self

    @classmethod
    def get_locked(cls, pk):
        """Fetch a row for update inside the current write transaction (row lock on PostgreSQL);
        a prepared query, as every change of a record starts with it."""
        def build():
            query = cls.select().where(cls._meta.primary_key == Param("pk"))
            return query.for_update() if is_postgres() else query
        row = first(prepared((cls, "get_locked"), build, pk=pk))
        if row is None:
            raise cls.DoesNotExist(f"{cls.__name__} {pk} does not exist.")
        return row

    def reload_locked(self):
        """Re-read this row inside the current write transaction (row lock on PostgreSQL)."""
        fresh = type(self).get_locked(self.id)
        self.__data__ = dict(fresh.__data__)
        self._dirty = set()
        self.__rel__ = {}
        return self


@contextlib.contextmanager
def connection():
    """Open a connection for the duration of a block unless one is already open."""
    opened = db.connect(reuse_if_open=True)
    try:
        yield
    finally:
        if opened and not db.is_closed():
            db.close()


STATISTICS_EVERY = 3600  # seconds between refreshes of SQLite's query-planner statistics, per process
ANALYSIS_LIMIT = 2000  # rows sampled per index: ANALYZE stays a few milliseconds on any size of database
_STATISTICS = {"at": None}


def refresh_statistics(force=False):
    """SQLite: refresh the statistics its query planner chooses indexes by (bounded ANALYZE) — at start,
    after an import, and at most hourly per process. Without them SQLite guesses, and on a large board
    it reads every deal through the owner index instead of summing the column headers from their
    covering index (5 ms instead of 2.5 ms for 10 000 deals). PostgreSQL's autovacuum does this itself."""
    if not isinstance(db.obj, SqliteDatabase) or db.obj.database in ("", ":memory:"):
        return False
    moment = time.monotonic()
    if not force and _STATISTICS["at"] is not None and moment - _STATISTICS["at"] < STATISTICS_EVERY:
        return False
    _STATISTICS["at"] = moment
    with connection():
        db.execute_sql(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        with write_transaction():
            db.execute_sql("ANALYZE")
    return True
