"""Backups: `flask --app app backup PATH` copies a live SQLite database; the restore drill opens the copy."""
import sqlite3
import threading

import pytest

from builders import make_lead
from models import HistoryEvent, Lead, SecurityEvent, User, db
from models.backup import BackupError, backup_sqlite
from models.schema import bind


@pytest.fixture
def sqlite_app(tmp_path):
    from app import create_app
    url = f"sqlite:///{tmp_path}/live.db"
    application = create_app({"DATABASE_URL": url, "SECRET_KEY": "test-secret", "INSTANCE_PATH": str(tmp_path),
                              "TESTING": True})
    yield application, tmp_path
    if not db.is_closed():
        db.close()


def test_backup_while_writing_and_restore_drill(sqlite_app):
    app, tmp_path = sqlite_app
    with db.connection_context():
        seller = User.create_user("sam@example.com", "long-enough-pw-1", "Sam", "seller")
        for _ in range(30):
            make_lead(seller)
    stop = threading.Event()

    def writer():  # another connection keeps writing while the backup runs
        with db.connection_context():
            while not stop.is_set():
                make_lead(User.get_by_id(seller.id))
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = app.test_cli_runner().invoke(args=["backup", str(tmp_path / "copy" / "backup.db")])
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0 and "integrity ok" in result.output, result.output
    with db.connection_context():
        assert SecurityEvent.select().where(SecurityEvent.kind == "backup").count() == 1
    # The restore drill: the copy is a consistent database that the app opens and reads.
    copy = sqlite3.connect(tmp_path / "copy" / "backup.db")
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    leads, events = copy.execute("SELECT COUNT(*) FROM lead").fetchone()[0], \
        copy.execute("SELECT COUNT(*) FROM history_event WHERE action = 'create'").fetchone()[0]
    copy.close()
    assert leads >= 30 and leads == events  # every lead in the copy has its history event: no torn write
    from app import create_app
    restored = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/copy/backup.db", "SECRET_KEY": "x",
                           "INSTANCE_PATH": str(tmp_path), "TESTING": True})
    client = restored.test_client()
    with db.connection_context():
        assert Lead.select().count() == leads and HistoryEvent.select().count() >= leads
    html = client.get("/login").get_data(as_text=True)
    assert "Log in" in html


def test_backup_refuses_postgres_and_its_own_file(tmp_path):
    bind(f"sqlite:///{tmp_path}/a.db")
    with db.connection_context():
        with pytest.raises(BackupError, match="another file"):
            backup_sqlite(str(tmp_path / "a.db"))
    bind("postgresql://postgres@127.0.0.1:5432/test")
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite(str(tmp_path / "b.db"))
    bind(f"sqlite:///{tmp_path}/a.db")
