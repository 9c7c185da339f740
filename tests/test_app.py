"""The app skeleton: configuration precedence, secret key, migrations, CLI commands, first start."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from app import ROOT, load_config
from clients import PASSWORD
from models import User, db
from models.schema import pending


def test_config_defaults_then_environment_then_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("CURRENCY", "usd")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    config = load_config({"INSTANCE_PATH": str(tmp_path), "PORT": 9000})
    assert config["CURRENCY"] == "USD"
    assert config["PORT"] == 9000
    assert config["HOST"] == "127.0.0.1"
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/pipeline.db"


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config({"INSTANCE_PATH": str(tmp_path)})["SECRET_KEY"]
    second = load_config({"INSTANCE_PATH": str(tmp_path)})["SECRET_KEY"]
    assert first == second and len(first) >= 32
    assert oct(os.stat(tmp_path / "secret_key").st_mode & 0o777) == "0o600"
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert load_config({"INSTANCE_PATH": str(tmp_path)})["SECRET_KEY"] == "from-env"


def test_importing_the_app_module_has_no_side_effects(tmp_path):
    code = "import app; import os; print(os.path.exists(os.path.join(app.ROOT, 'instance', 'never-created')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sqlite_database_is_migrated_on_start(app):
    with db.connection_context():
        assert pending() == []
        assert User.table_exists()


def test_the_supplies_migration_takes_a_database_that_has_the_columns_already(app):
    """Development databases of 2026-11-30 got goods/services from an earlier 0008: 0009 leaves them be."""
    import importlib
    from models.schema import runner
    supplies = importlib.import_module("models.migrations.0009_supplies")
    with db.connection_context():
        assert "supply" in {column.name for column in db.get_columns("invoice_line")}
        supplies.up(runner().migrator, db.obj)  # the columns exist: nothing is added twice
        assert [column.name for column in db.get_columns("product")].count("supply") == 1


def test_cli_create_user_and_db_upgrade(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "boss@example.com", "--password", "long-enough-1", "--role", "admin"])
    assert result.exit_code == 0, result.output
    with db.connection_context():
        boss = User.get(User.email == "boss@example.com")
        assert boss.role == "admin" and boss.check_password("long-enough-1")
    dup = runner.invoke(args=["create-user", "boss@example.com", "--password", "long-enough-1"])
    assert dup.exit_code == 2 and "already exists" in dup.output
    short = runner.invoke(args=["create-user", "x@example.com", "--password", "short"])
    assert short.exit_code == 2 and "at least 10" in short.output
    teamed = runner.invoke(args=["create-user", "north@example.com", "--password", "long-enough-2", "--team", "North"])
    assert teamed.exit_code == 0 and "in team North" in teamed.output, teamed.output
    with db.connection_context():
        assert User.get(User.email == "north@example.com").team.name == "North"
        assert User.get(User.email == "boss@example.com").team_id is None
    upgrade = runner.invoke(args=["db-upgrade"])
    assert upgrade.exit_code == 0 and "up to date" in upgrade.output


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_python_app_py_seeds_demo_data_and_serves_the_board(tmp_path, database_url):
    port = _free_port()
    env = dict(os.environ, INSTANCE_PATH=str(tmp_path / "inst"), PORT=str(port), PYTHONUNBUFFERED="1")
    env.pop("DATABASE_URL", None)
    env.pop("SECRET_KEY", None)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Demo logins" in "".join(lines) and line.strip() == "":
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in output
        email, password = re.search(r"^\s+(\S+@\S+) / (\S+)\s+\(admin\)", output, re.M).groups()
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        html = opener.open(f"http://127.0.0.1:{port}/login").read().decode()
        token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
        data = f"email={email}&password={password}&csrf_token={token}".encode()
        board = opener.open(f"http://127.0.0.1:{port}/login", data=data).read().decode()
        counts = dict(re.findall(r'id="head-(\w+)".*?data-count="(\d+)"', board, re.S))
        assert set(counts) == {"qualify", "develop", "propose", "close", "fulfill", "invoiced", "lost"}
        assert all(int(n) > 0 for n in counts.values()), counts
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def test_security_headers_and_no_store_for_logged_in_pages(client, logged_in, user):
    anonymous = client.get("/login")
    assert "script-src 'self'" in anonymous.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in anonymous.headers["Content-Security-Policy"]
    assert anonymous.headers["X-Content-Type-Options"] == "nosniff"
    assert anonymous.headers["Referrer-Policy"] == "same-origin"
    board = logged_in.get("/board")
    assert board.headers["Cache-Control"] == "no-store"
    assert "no-store" not in logged_in.get("/static/app.css").headers.get("Cache-Control", "")
    cookie = client.login(user.email).headers.get("Set-Cookie", "") or ""
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Set-Cookie" not in board.headers  # a valid session is not re-signed on every request


@pytest.mark.parametrize("proxies, counted", [(0, "10.0.0.2"), (1, "203.0.113.9"), (2, "198.51.100.7")])
def test_client_address_comes_from_trusted_proxies_only(database_url, tmp_path, proxies, counted):
    """Behind a reverse proxy every request comes from the proxy's address: with TRUSTED_PROXIES=N the
    client's address (the login and web-form limits count by it, the security log names it) is the Nth
    X-Forwarded-For entry from the right, the ones those proxies set. Without it the header is ignored, so a
    client cannot pick its own address to dodge the limits."""
    from app import create_app
    from clients import HtmxClient
    from models import LoginFailure, SecurityEvent
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "t", "INSTANCE_PATH": str(tmp_path),
                      "TESTING": True, "TRUSTED_PROXIES": proxies})
    browser = HtmxClient(app.test_client())
    browser.client.environ_base.update(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.9")
    assert browser.login("nobody@example.com", "wrong-password").status_code == 401
    with db.connection_context():
        assert [key for key, in LoginFailure.select(LoginFailure.key).where(LoginFailure.key.startswith("ip:"))
                .tuples()] == [f"ip:{counted}"]
        assert SecurityEvent.get(SecurityEvent.kind == "login_failed").ip == counted


@pytest.mark.parametrize("value", ["one", "-1", "9"])
def test_trusted_proxies_must_be_a_small_number(tmp_path, monkeypatch, value):
    monkeypatch.setenv("TRUSTED_PROXIES", value)
    with pytest.raises(ValueError, match="TRUSTED_PROXIES must be the number of reverse proxies"):
        load_config({"INSTANCE_PATH": str(tmp_path)})


@pytest.mark.parametrize("code, message", [("JPY", "does not have two decimal places"), ("KWD", "two decimal places"),
                                           ("XYZ", "not an ISO 4217 currency"), ("EURO", "not an ISO 4217")])
def test_currency_must_be_kept_in_hundredths(tmp_path, monkeypatch, code, message):
    """Amounts are kept in hundredths: yen (no minor unit) or dinars (three decimals) would be printed and
    invoiced with cents, so such an installation is refused at start, with the reason."""
    monkeypatch.setenv("CURRENCY", code)
    with pytest.raises(ValueError, match=message):
        load_config({"INSTANCE_PATH": str(tmp_path)})


def test_screens_and_documents_print_the_configured_currency(database_url, tmp_path):
    """The settings page shows CURRENCY (no field of its own any more) and a quote's panel and PDF both
    print it."""
    from app import create_app
    from models.documents import quote_source
    from builders import make_proposed
    from clients import HtmxClient
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "t", "INSTANCE_PATH": str(tmp_path),
                      "TESTING": True, "CURRENCY": "CHF"})
    try:
        with db.connection_context():
            manager = User.create_user("mia@example.com", PASSWORD, "Mia Manager", "manager")
            quote = make_proposed(manager).quote_in("draft")
            assert "CHF\u00a0" in quote_source(quote).html
        browser = HtmxClient(app.test_client())
        browser.login("mia@example.com")
        page = browser.get("/settings").get_data(as_text=True)
        assert 'name="currency"' not in page and "Currency: <strong>CHF</strong>" in page
        assert "CHF\u00a0" in browser.hx_get(f"/quotes/{quote.id}").get_data(as_text=True)
    finally:
        from models.settings import use_currency
        use_currency("EUR")
