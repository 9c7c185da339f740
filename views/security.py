"""CSRF tokens and the signed session cookie.

CSRF: a synchronizer token. Each session holds a random secret; every page carries it masked with a
fresh random pad (so the bytes differ from page to page, as BREACH advice asks), and every POST/PUT/
PATCH/DELETE must send it back in the `csrf_token` field or the `X-CSRFToken` header (htmx takes it from
the page's <meta name="csrf-token">). Checking it is a constant-time comparison: no signing per request.

Session: Flask's signed cookie, with verified cookies remembered per process, so a request whose cookie
was already checked skips the HMAC and decoding (a cookie is immutable: same bytes, same content).
"""
import base64
import binascii
import hmac
import secrets
import time
from collections import OrderedDict

from flask import g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.exceptions import BadRequest

FIELD = "csrf_token"
HEADER = "X-CSRFToken"
SESSION_KEY = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SECRET_BYTES = 32


class CSRFError(BadRequest):
    description = "The form's security token is missing or expired: reload the page and try again."


def csrf_token():
    """The token to put in this page's forms (the session's secret under this request's pad)."""
    token = g.get("_csrf_token")
    if token is None:
        secret = _session_secret(create=True)
        pad = secrets.token_bytes(SECRET_BYTES)
        token = g._csrf_token = base64.urlsafe_b64encode(pad + bytes(a ^ b for a, b in zip(pad, secret))).decode()
    return token


def _session_secret(create=False):
    encoded = session.get(SESSION_KEY)
    if encoded is None:
        if not create:
            return None
        encoded = session[SESSION_KEY] = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    return base64.urlsafe_b64decode(encoded)


def _unmask(token):
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) != 2 * SECRET_BYTES:
        return None
    pad, masked = raw[:SECRET_BYTES], raw[SECRET_BYTES:]
    return bytes(a ^ b for a, b in zip(pad, masked))


class CSRFProtect:
    """Checks the token on every unsafe request, except views marked with `exempt` (which must then
    authenticate every request on their own, e.g. with an API token)."""

    def __init__(self):
        self._exempt = set()
        self._exempt_blueprints = set()

    def init_app(self, app):
        app.jinja_env.globals["csrf_token"] = csrf_token
        app.before_request(self.protect)

    def exempt(self, view):
        self._exempt.add(f"{view.__module__}.{view.__name__}")
        return view

    def exempt_blueprint(self, name):
        """Every view of blueprint `name` (which must authenticate each request itself, e.g. by token)."""
        self._exempt_blueprints.add(name)

    def protect(self):
        if request.method in SAFE_METHODS or request.blueprint in self._exempt_blueprints:
            return
        view = request.url_rule and request.url_rule.endpoint
        function = view and _view_function(view)
        if function is not None and f"{function.__module__}.{function.__name__}" in self._exempt:
            return
        if None in request.form:  # a multipart part without a name (a browser sends one for name="\")
            raise CSRFError("The form has a field without a name.")
        sent = request.headers.get(HEADER) or request.form.get(FIELD)
        secret = _session_secret()
        if not sent or secret is None:
            raise CSRFError()
        unmasked = _unmask(sent)
        if unmasked is None or not hmac.compare_digest(unmasked, secret):
            raise CSRFError()


def _view_function(endpoint):
    from flask import current_app
    return current_app.view_functions.get(endpoint)


class CachedSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session; a cookie that verified is not verified and decoded again for a few
    minutes (its age is still checked then). Only sessions of plain values are kept (flashed messages
    are lists that requests change in place)."""

    cache_size = 2048
    recheck_seconds = 300

    def __init__(self):
        self._verified = OrderedDict()

    def open_session(self, app, request):
        value = request.cookies.get(self.get_cookie_name(app))
        if not value or app.secret_key is None:
            return super().open_session(app, request)
        key = (app.secret_key, value)
        known = self._verified.get(key)
        now = time.monotonic()
        if known is not None and now - known[0] < self.recheck_seconds:
            return SecureCookieSession(known[1])
        opened = super().open_session(app, request)
        if opened and all(isinstance(v, (str, int, bool, type(None))) for v in opened.values()):
            self._verified[key] = (now, dict(opened))
            self._verified.move_to_end(key)
            if len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return opened
