"""Online backup of an SQLite database (the app may keep running and writing meanwhile)."""
import os
import sqlite3

from peewee import SqliteDatabase

from .base import db


class BackupError(Exception):
    pass


def backup_sqlite(path):
    """Copy the bound SQLite database to `path` with SQLite's online backup API, check the copy with
    PRAGMA integrity_check, and log it; returns the size in bytes. The copy is a consistent snapshot
    even while other processes write (it restarts when a page changes under it)."""
    from .security import SecurityEvent
    from .base import write_transaction
    database = db.obj
    if not isinstance(database, SqliteDatabase):
        raise BackupError("This database is PostgreSQL: back it up with pg_dump (see README, Backups).")
    target_path = os.path.abspath(path)
    if os.path.abspath(database.database) == target_path:
        raise BackupError("The backup must go to another file than the database itself.")
    os.makedirs(os.path.dirname(target_path) or ".", exist_ok=True)
    partial = target_path + ".partial"
    if os.path.exists(partial):
        os.remove(partial)
    target = sqlite3.connect(partial)
    try:
        database.connection().backup(target, pages=256)
        target.execute("PRAGMA journal_mode=DELETE")
        status = target.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        target.close()
    if status != "ok":
        os.remove(partial)
        raise BackupError(f"The copy failed its integrity check: {status}")
    os.replace(partial, target_path)
    with write_transaction():
        SecurityEvent.log("backup", detail=target_path)
    return os.path.getsize(target_path)
