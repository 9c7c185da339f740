"""Personal API tokens: a user's key to the JSON API, stored only as the SHA-256 of its secret.

A token reads `pcrm_<prefix>_<secret>`. The prefix is shown in the user's list so a token can be told
apart without its secret; the whole token is shown once, when it is created. A request with a token acts
as its user (same reach as in the web UI); a revoked token, or one of a deactivated user, is refused.
"""
import datetime
import hashlib
import secrets

from peewee import CharField, DateTimeField, ForeignKeyField

from .base import BaseModel, Param, first, now, prepared, write_transaction
from .errors import ValidationError
from .user import User

TOKEN_PREFIX = "pcrm_"
MAX_ACTIVE_TOKENS = 20
MAX_TOKEN_LENGTH = 200
# last_used_at is written at most this often per token (a GET should not cost a write every time).
USE_RESOLUTION = datetime.timedelta(minutes=1)


def token_hash(raw):
    """The SHA-256 (hex) stored for a token: the secret itself is never kept."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class ApiToken(BaseModel):
    user = ForeignKeyField(User, backref="api_tokens", on_delete="CASCADE")
    name = CharField(max_length=80)
    prefix = CharField(max_length=24)
    secret_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=now)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)

    @property
    def active(self):
        return self.revoked_at is None

    @classmethod
    def of_user(cls, user):
        """The user's tokens, active ones first, newest first."""
        return (cls.select().where(cls.user == user.id)
                .order_by(cls.revoked_at.is_null(False), cls.created_at.desc(), cls.id.desc()))

    @classmethod
    def issue(cls, user, name):
        """Create a token for `user`; returns (token, the full secret token text, shown only now)."""
        from .security import SecurityEvent
        name = (name or "").strip()
        if not name or len(name) > 80 or "\x00" in name:
            raise ValidationError("The token was not created.",
                                  {"name": "Name the token (at most 80 characters), e.g. the script that uses it."})
        active = cls.select().where((cls.user == user.id) & cls.revoked_at.is_null()).count()
        if active >= MAX_ACTIVE_TOKENS:
            raise ValidationError("The token was not created.",
                                  {"name": f"You have {active} active tokens: revoke one you no longer use first."})
        prefix = TOKEN_PREFIX + secrets.token_hex(4)
        raw = f"{prefix}_{secrets.token_urlsafe(32)}"
        with write_transaction():
            token = cls.create(user=user.id, name=name, prefix=prefix, secret_hash=token_hash(raw))
            SecurityEvent.log("api_token_created", actor=user, user=user, detail=f"{name} ({prefix})")
        return token, raw

    def revoke(self, actor):
        """Revoke the token (it stops working at once); repeating it changes nothing."""
        from .security import SecurityEvent
        with write_transaction():
            changed = (ApiToken.update(revoked_at=now())
                       .where((ApiToken.id == self.id) & ApiToken.revoked_at.is_null()).execute())
            if not changed:
                return False
            SecurityEvent.log("api_token_revoked", actor=actor, user=User.get_by_id(self.user_id),
                              detail=f"{self.name} ({self.prefix})")
        self.revoked_at = now()
        return True

    @classmethod
    def authenticate(cls, raw):
        """The active user a token belongs to, or None (unknown or revoked token, deactivated user).
        Every API request asks: a prepared query; the last use is recorded at most once a minute."""
        if not raw or len(raw) > MAX_TOKEN_LENGTH or not raw.startswith(TOKEN_PREFIX) or not raw.isascii():
            return None
        row = first(prepared((cls, "authenticate"), lambda: (
            cls.select(cls, User).join(User, on=(cls.user == User.id))
            .where((cls.secret_hash == Param("hash")) & cls.revoked_at.is_null()
                   & (User.active == True))), hash=token_hash(raw)))  # noqa: E712
        if row is None:
            return None
        moment = now()
        if row.last_used_at is None or moment - row.last_used_at >= USE_RESOLUTION:
            with write_transaction():
                cls.update(last_used_at=moment).where(cls.id == row.id).execute()
        return row.user
