"""The test client that logs in, keeps the CSRF token and sends htmx requests, and the databases the
tests run on (shared by test modules; `from conftest import …` would find tests/browser/conftest.py)."""
import contextlib
import os
import re
import shutil
import sqlite3
import tempfile

PASSWORD = "correct-horse-9"
PG_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
DATABASES = ["sqlite"] + (["postgres"] if PG_URL else [])
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def empty_database(kind, folder, request):
    """Bind the models to an empty, migrated database of `kind` and return its URL: a new SQLite file in
    `folder` (a copy of this process's migrated template: migrating costs 140 ms a test, copying 4 ms), or
    the run's PostgreSQL database (fixture postgres_url) with every table emptied (DELETE, children first,
    and the id sequences restarted: TRUNCATE of every table costs 120 ms a test, this 8 ms)."""
    from models import MODELS, db
    from models.schema import bind
    if kind == "sqlite":
        target = folder / "test.db"
        shutil.copyfile(_sqlite_template(), target)
        url = f"sqlite:///{target}"
        bind(url)
        return url
    url = request.getfixturevalue("postgres_url")
    bind(url)
    tables = [m._meta.table_name for m in MODELS]
    restart = ", ".join(f"setval(pg_get_serial_sequence('\"{table}\"', 'id'), 1, false)" for table in tables)
    with db.connection_context(), db.atomic():
        for table in reversed(tables):  # MODELS lists a table after the tables it refers to
            db.execute_sql(f'DELETE FROM "{table}"')
        db.execute_sql(f"SELECT {restart}")
    return url


_template = []


def _sqlite_template():
    """A migrated SQLite file, made once per test process, its write-ahead log folded in."""
    if not _template:
        from models import db
        from models.schema import bind, upgrade
        path = os.path.join(tempfile.mkdtemp(prefix="pipeline-template-"), "template.db")
        bind(f"sqlite:///{path}")
        upgrade()
        if not db.is_closed():
            db.close()
        if hasattr(db.obj, "close_all"):
            db.obj.close_all()
        with contextlib.closing(sqlite3.connect(path)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _template.append(path)
    return _template[0]


def queries_of(call):
    """(how many SQL statements `call()` sent to the database, what it returned)."""
    from models import db
    executed = []
    original = db.obj.execute_sql

    def spy(sql, params=None, *args, **kwargs):
        executed.append(sql)
        return original(sql, params, *args, **kwargs)
    db.obj.execute_sql = spy
    try:
        answer = call()
    finally:
        db.obj.execute_sql = original
    return len(executed), answer


class HtmxClient:
    """A Flask test client that logs in, keeps the CSRF token and can send htmx requests."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def __getattr__(self, name):
        return getattr(self.client, name)

    def refresh_token(self, path="/login"):
        html = self.client.get(path).get_data(as_text=True)
        match = CSRF_META.search(html)
        self.token = match.group(1) if match else None
        return self.token

    def login(self, email, password=PASSWORD):
        self.refresh_token("/login")
        resp = self.client.post("/login", data={"email": email, "password": password, "csrf_token": self.token})
        self.refresh_token("/board")
        return resp

    def headers(self, htmx=False, extra=None):
        headers = {"X-CSRFToken": self.token or ""}
        if htmx:
            headers["HX-Request"] = "true"
        headers.update(extra or {})
        return headers

    def hx_get(self, path, **kwargs):
        return self.client.get(path, headers=self.headers(True, kwargs.pop("headers", None)), **kwargs)

    def hx_post(self, path, data=None, **kwargs):
        return self.client.post(path, data=data or {}, headers=self.headers(True, kwargs.pop("headers", None)),
                                **kwargs)

    def form_post(self, path, data=None, **kwargs):
        payload = dict(data or {})
        payload.setdefault("csrf_token", self.token)
        return self.client.post(path, data=payload, **kwargs)
