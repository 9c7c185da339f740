"""The security log and login throttling (stored in the database, so every worker sees the same)."""
import contextvars
import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, TextField, fn

from .base import BaseModel, now, write_transaction
from .user import User

# The client address of the request being served (set by the app for each request).
client_ip = contextvars.ContextVar("client_ip", default=None)

WINDOW = datetime.timedelta(minutes=15)
ACCOUNT_LIMIT = 5     # failed logins per account per window
IP_LIMIT = 20         # failed logins per address per window
KEEP_EVENTS = datetime.timedelta(hours=1)

KINDS = {"login": "Logged in", "login_failed": "Login failed", "login_throttled": "Login refused (too many failures)",
         "logout": "Logged out", "user_created": "User created", "user_role_changed": "Role changed",
         "user_team_changed": "Team changed", "user_active_changed": "Active changed", "user_name_changed": "Name changed",
         "password_changed": "Password changed", "password_reset": "Password reset by an admin",
         "team_created": "Team created", "invoice_issued": "Invoice issued", "invoice_canceled": "Invoice canceled",
         "export": "Data exported", "backup": "Backup written", "capture_form_created": "Web form created",
         "capture_form_changed": "Web form changed", "api_token_created": "API token created",
         "api_token_revoked": "API token revoked"}


class SecurityEvent(BaseModel):
    at = DateTimeField(default=now, index=True)
    kind = CharField(max_length=40)
    actor = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    user = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    email = CharField(max_length=254, default="")
    ip = CharField(max_length=64, default="")
    detail = TextField(default="")

    @classmethod
    def log(cls, kind, actor=None, user=None, detail="", email=""):
        """Append one entry (inside the caller's transaction when there is one)."""
        return cls.create(kind=kind, actor=actor, user=user, email=(email or (user.email if user else ""))[:254],
                          ip=(client_ip.get() or "")[:64], detail=str(detail)[:2000])

    @property
    def label(self):
        return KINDS.get(self.kind, self.kind.replace("_", " "))


class LoginFailure(BaseModel):
    """One counted event over a sliding window, by key: a failed login ("account:…", "ip:…") or a
    web-form submission ("capture:…"). In the database, so every worker counts the same."""

    key = CharField(max_length=300, index=True)
    at = DateTimeField(default=now, index=True)


def count_events(keys, minutes):
    """{key: events in the last `minutes`} for the given keys."""
    since = now() - datetime.timedelta(minutes=minutes)
    return dict(LoginFailure.select(LoginFailure.key, fn.COUNT(LoginFailure.id))
                .where(LoginFailure.key.in_(list(keys)) & (LoginFailure.at > since))
                .group_by(LoginFailure.key).tuples())


def record_event(keys):
    """Count one event under each key (call inside a write transaction); events older than the
    longest window are dropped."""
    LoginFailure.delete().where(LoginFailure.at < now() - KEEP_EVENTS).execute()
    LoginFailure.insert_many([{"key": key[:300], "at": now()} for key in keys]).execute()


def _keys(email, ip):
    return "account:" + (email or "").strip().lower()[:254], "ip:" + (ip or "")[:64]


def login_blocked(email, ip):
    """True when this account or address has failed too often in the last 15 minutes."""
    account, address = _keys(email, ip)
    counts = count_events([account, address], WINDOW.total_seconds() / 60)
    return counts.get(account, 0) >= ACCOUNT_LIMIT or counts.get(address, 0) >= IP_LIMIT


def record_login(email, ip, user):
    """Log a login attempt: a success clears the account's failures, a failure is counted."""
    account, address = _keys(email, ip)
    with write_transaction():
        if user is not None:
            LoginFailure.delete().where(LoginFailure.key == account).execute()
            SecurityEvent.log("login", actor=user, user=user)
            return
        record_event([account, address])
        known = User.get_or_none(User.email == (email or "").strip().lower()[:254])
        SecurityEvent.log("login_failed", user=known, email=email)
