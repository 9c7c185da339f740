"""Binding the database and applying migrations (playhouse.migrations files in models/migrations)."""
import os

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


def upgrade():
    """Apply pending migrations in order; returns their names."""
    with db.obj.connection_context():
        return runner().up()


def pending():
    """Names of migrations not yet applied."""
    with db.obj.connection_context():
        return [m.name for m in runner().status() if m.path and not m.applied]
