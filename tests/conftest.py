"""Fixtures: a fresh database per test (SQLite file always; PostgreSQL too when TEST_DATABASE_URL is set)."""
import os
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from models import User, db  # noqa: E402
from models.schema import bind, upgrade  # noqa: E402

from clients import DATABASES, PASSWORD, PG_URL, HtmxClient, empty_database  # noqa: E402,F401

import models.user  # noqa: E402

# The suite creates and logs in thousands of users: a cheap hash method keeps that from dominating its
# run time (scrypt costs ~0.1 s per hash). Production keeps scrypt (test_access checks it in a fresh
# interpreter); servers the tests start in subprocesses use it too.
models.user.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"


# Some modules take "today" once, when they are collected (parametrized dates, TODAY constants).
COLLECTED_ON = __import__("models.base", fromlist=["today"]).today()


@pytest.fixture(autouse=True)
def _the_day_the_run_began():
    """A run that passes midnight (UTC) keeps the clock of the day it was collected on: the models' now() and
    today() say 23:59:59 of that day, so dates taken at collection still mean today and tomorrow."""
    from models.base import clock_at, today
    if today() == COLLECTED_ON:
        yield
        return
    import datetime
    with clock_at(datetime.datetime.combine(COLLECTED_ON, datetime.time(23, 59, 59))):
        yield


def _admin_connection(url):
    import psycopg2
    from urllib.parse import urlparse
    parts = urlparse(url)
    conn = psycopg2.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                            user=parts.username or "postgres", password=parts.password or None,
                            dbname=(parts.path or "/postgres").lstrip("/") or "postgres")
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def postgres_url():
    """A database of its own for this test run (worker), created on the server of TEST_DATABASE_URL."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"pipeline_test_{worker}_{uuid.uuid4().hex[:8]}"
    admin = _admin_connection(PG_URL)
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    bind(url)
    upgrade()
    yield url
    if not db.is_closed():
        db.close()
    db.obj.close_all() if hasattr(db.obj, "close_all") else None
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    """The URL of an empty, migrated database for one test."""
    return empty_database(request.param, tmp_path, request)


@pytest.fixture
def database(database_url):
    """An open connection to the test database (for model tests)."""
    db.connect(reuse_if_open=True)
    yield db
    if not db.is_closed():
        db.close()


@pytest.fixture
def seller(database):
    return User.create_user("sam@example.com", PASSWORD, "Sam Seller", "seller")


@pytest.fixture
def manager(database):
    return User.create_user("mia@example.com", PASSWORD, "Mia Manager", "manager")


@pytest.fixture
def app(database_url, tmp_path):
    from app import create_app
    application = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test-secret",
                              "INSTANCE_PATH": str(tmp_path), "TESTING": True})
    yield application
    if not db.is_closed():
        db.close()


@pytest.fixture
def client(app):
    """An anonymous client."""
    with app.app_context():
        pass
    return HtmxClient(app.test_client())


@pytest.fixture
def user(app):
    """A seller who can log in."""
    with db.connection_context():
        return User.create_user("sam@example.com", PASSWORD, "Sam Seller", "seller")


@pytest.fixture
def logged_in(app, user):
    """A client logged in as the seller `user`."""
    c = HtmxClient(app.test_client())
    resp = c.login(user.email)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return c


# The longest tests (10–80 s each) start first, so that with pytest-xdist they run beside the many short
# ones instead of making one worker finish alone at the end; the rest keep their order.
LONG_FIRST = ("test_a_100000_row_file_imports_in_bounded_memory", "test_gapless_numbers_with_concurrent",
              "test_writers_killed_with_sigkill", "test_seed_is_deterministic_and_runs_once",
              "test_schemathesis_against_own_openapi_document", "test_permission_matrix_every_record_route",
              "test_prepared_cards_with_their_joins", "test_a_prepared_select_builds_every_model",
              "test_python_app_py_seeds_demo_data")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, name in enumerate(LONG_FIRST) if item.name.startswith(name)), len(LONG_FIRST))
    items.sort(key=rank)
