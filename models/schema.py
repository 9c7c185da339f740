"""Binding the database and applying migrations (playhouse.migrations files in models/migrations)."""
import contextlib
import fcntl
import os

from peewee import SqliteDatabase
from playhouse.migrations import Runner

from .base import db, make_database

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")


def bind(url):
    """Point the models at the database named by `url` (no connection is opened yet)."""
    if db.obj is not None and hasattr(db.obj, "close_all"):
        if not db.is_closed():
            db.close()
        db.obj.close_all()
    database = make_database(url)
    db.initialize(database)
    return database


def runner():
    return Runner(db.obj, MIGRATIONS_DIR)


@contextlib.contextmanager
def _one_migrator_at_a_time():
    """On an SQLite file, processes that start together (gunicorn workers) migrate in turn: the first
    applies what is pending, the next finds nothing left (an exclusive lock on a file beside the database)."""
    database = db.obj
    if not isinstance(database, SqliteDatabase) or database.database in ("", ":memory:"):
        yield
        return
    fd = os.open(os.path.abspath(database.database) + "-migratelock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def upgrade():
    """Apply pending migrations in order; returns their names."""
    with _one_migrator_at_a_time(), db.obj.connection_context():
        return runner().up()


def pending():
    """Names of migrations not yet applied."""
    with db.obj.connection_context():
        return [m.name for m in runner().status() if m.path and not m.applied]
