"""Browser fixtures: the app served on a loopback port, Playwright driving Debian's Chromium."""
import os
import shutil
import socket
import threading

import pytest
from werkzeug.serving import make_server

# Debian's Chromium (apt-get install chromium); CHROMIUM_PATH names another build
CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")


def _chromium_missing_reason():
    if not os.path.exists(CHROMIUM):
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        hint = f"; set CHROMIUM_PATH={found} to use that one" if found else ""
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium{hint})"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r tests/requirements.txt)"
    return None


def watch_console(page):
    """The page's console errors and CSP violations (as they happen), in a list; 422 answers are expected."""
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "status of 422" not in msg.text
            else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => console.error("
                         "'CSP violation: ' + e.violatedDirective + ' ' + e.sourceFile + ':' + e.lineNumber))")
    page.set_default_timeout(15000)
    return errors


@pytest.fixture
def console_watch():
    """watch_console as a fixture (test modules cannot import from a conftest)."""
    return watch_console


@pytest.fixture(scope="session")
def browser():
    reason = _chromium_missing_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def live_server(app):
    """The test app served by a real HTTP server in a thread on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def page(browser, live_server, user):
    """A logged-in page on the board; console errors are collected in page.console_errors."""
    context = browser.new_context(viewport={"width": 1920, "height": 1000}, bypass_csp=True)
    pg = context.new_page()
    pg.console_errors = []
    expected = ("status of 422", "status of 409")
    pg.on("console", lambda msg: pg.console_errors.append(msg.text)
          if msg.type == "error" and not any(code in msg.text for code in expected) else None)
    pg.on("pageerror", lambda exc: pg.console_errors.append(str(exc)))
    pg.add_init_script("document.addEventListener('securitypolicyviolation', e => console.error("
                       "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sample + ' at ' "
                       "+ e.sourceFile + ':' + e.lineNumber))")
    pg.set_default_timeout(15000)
    pg.goto(f"{live_server}/login")
    pg.fill("input[name=email]", user.email)
    pg.fill("input[name=password]", "correct-horse-9")
    pg.click("button[type=submit]")
    pg.wait_for_url(f"{live_server}/board")
    pg.base = live_server
    yield pg
    context.close()


@pytest.fixture
def screenshot():
    """screenshot(page, name): save a PNG under tests/artifacts/ to look at."""
    def take(pg, name):
        os.makedirs(ARTIFACTS, exist_ok=True)
        pg.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=False)
    return take


@pytest.fixture
def database_url(tmp_path):
    """Browser tests run on SQLite only (the rules themselves are tested on both databases)."""
    from models.schema import bind, upgrade
    url = f"sqlite:///{tmp_path / 'browser.db'}"
    bind(url)
    upgrade()
    return url
