"""Real servers for multi-process tests: gunicorn instances of the app on loopback ports, and a logged-in
HTTP session (cookie + CSRF token) that talks to one of them over http.client.

Every server runs in a process group of its own; `stop()` ends the whole group (master and workers).
"""
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from urllib.parse import urlencode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(proc, first=signal.SIGTERM, grace=10):
    """End a process started with start_new_session=True and everything it started."""
    if proc is None or proc.poll() is not None and not _group_alive(proc.pid):
        return
    for sig in (first, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(proc.pid):
            break
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (workers whose master is gone)
    except ProcessLookupError:
        pass


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


class Server:
    """`gunicorn app:create_app()` with `workers` sync workers on 127.0.0.1:<free port>."""

    def __init__(self, database_url, instance_path, workers=2, secret_key="test-secret", log_path=None):
        self.port = free_port()
        self.database_url, self.instance_path, self.workers = database_url, str(instance_path), workers
        self.secret_key = secret_key
        self.log_path = log_path or os.path.join(self.instance_path, f"gunicorn-{self.port}.log")
        self.proc = None

    def start(self):
        os.makedirs(self.instance_path, exist_ok=True)
        env = dict(os.environ, DATABASE_URL=self.database_url, SECRET_KEY=self.secret_key,
                   INSTANCE_PATH=self.instance_path, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [GUNICORN, "--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}", "--chdir", ROOT,
                 "--timeout", "60", "--graceful-timeout", "2", "--log-level", "warning", "app:create_app()"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        return self

    def wait_ready(self, timeout=30):
        """Wait until a worker answers /healthz (the app imported and the database reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
                conn.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self):
        """Quick shutdown (SIGINT: gunicorn's master and workers exit at once), SIGKILL for anything left."""
        kill_group(self.proc, first=signal.SIGINT, grace=5)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_since(self, offset):
        """What the server logged after `offset` (from log_size())."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars=4000):
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode(errors="replace")[-chars:]
        except OSError:
            return ""


class Response:
    def __init__(self, status, body, headers):
        self.status, self.body, self.headers = status, body, headers

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class HttpSession:
    """A browser-like session against one server: keeps the session cookie and the CSRF token."""

    def __init__(self, port, timeout=60):
        self.port, self.timeout = port, timeout
        self.cookie, self.token = None, None
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, data=None, htmx=True, headers=None):
        """One request; returns a Response (status, body text, headers). The connection reopens as needed."""
        hdrs = {}
        if self.cookie:
            hdrs["Cookie"] = self.cookie
        if self.token:
            hdrs["X-CSRFToken"] = self.token
        if htmx:
            hdrs["HX-Request"] = "true"
        body = None
        if data is not None:
            body = urlencode(data)
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        hdrs.update(headers or {})
        try:
            self.conn.request(method, path, body, hdrs)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # a keep-alive connection the server had closed: send again on a new one
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.conn.request(method, path, body, hdrs)
            resp = self.conn.getresponse()
        text = resp.read().decode("utf-8", errors="replace")
        cookie = resp.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return Response(resp.status, text, dict(resp.getheaders()))

    def get(self, path, htmx=False):
        return self.request("GET", path, htmx=htmx)

    def post(self, path, data=None, htmx=True):
        return self.request("POST", path, data or {}, htmx=htmx)

    def refresh_token(self, path="/board"):
        match = CSRF_META.search(self.get(path).body)
        self.token = match.group(1) if match else None
        return self.token

    def login(self, email, password):
        """Log in through the form, then take the CSRF token of the new session from the board page."""
        self.refresh_token("/login")
        resp = self.request("POST", "/login", {"email": email, "password": password, "csrf_token": self.token},
                            htmx=False)
        if resp.status != 302:
            raise AssertionError(f"login failed on port {self.port}: {resp}")
        if not self.refresh_token("/board"):
            raise AssertionError(f"no CSRF token on the board after login on port {self.port}")
        return self

    def close(self):
        self.conn.close()
