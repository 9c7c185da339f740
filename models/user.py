"""Users who log in: sellers, managers, admins."""
from peewee import BooleanField, CharField, Check, DateTimeField
from werkzeug.security import check_password_hash, generate_password_hash

from .base import BaseModel, Param, first, now, prepared, write_transaction
from .errors import ValidationError

ROLES = ("seller", "manager", "admin")


class User(BaseModel):
    name = CharField(max_length=120)
    email = CharField(max_length=254, unique=True)
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16, default="seller",
                     constraints=[Check("role IN ('seller', 'manager', 'admin')")])
    active = BooleanField(default=True)
    created_at = DateTimeField(default=now)

    @property
    def initials(self):
        """Two letters for avatars on cards."""
        parts = [p for p in self.name.split() if p]
        if not parts:
            return "?"
        if len(parts) == 1:
            return parts[0][:2].upper()
        return (parts[0][0] + parts[-1][0]).upper()

    def check_password(self, password):
        """True when the password matches the stored hash."""
        return bool(password) and check_password_hash(self.password_hash, password)

    @classmethod
    def create_user(cls, email, password, name=None, role="seller"):
        """Create a user after validating email, password and role."""
        email = (email or "").strip().lower()
        errors = {}
        if not email or "@" not in email or len(email) > 254:
            errors["email"] = "Enter a valid email address."
        if not password or len(password) < 8:
            errors["password"] = "Use at least 8 characters."
        if role not in ROLES:
            errors["role"] = f"Role must be one of {', '.join(ROLES)}."
        if not errors and cls.select().where(cls.email == email).exists():
            errors["email"] = "A user with this email already exists."
        if errors:
            raise ValidationError("The user could not be created.", errors)
        with write_transaction():
            return cls.create(email=email, name=(name or email.split("@")[0]).strip()[:120],
                              password_hash=generate_password_hash(password), role=role)

    @classmethod
    def signed_in(cls, uid):
        """The active user of a session's user id, or None (every request asks: a prepared query)."""
        if not isinstance(uid, int) or isinstance(uid, bool):
            return None
        return first(prepared((cls, "signed_in"), lambda: cls.select().where(
            (cls.id == Param("uid")) & (cls.active == True)), uid=uid))  # noqa: E712

    @classmethod
    def authenticate(cls, email, password):
        """The active user with this email and password, or None."""
        user = cls.get_or_none(cls.email == (email or "").strip().lower())
        if user and user.active and user.check_password(password):
            return user
        return None
