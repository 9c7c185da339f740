"""Users who log in (sellers, managers, admins) and the teams they belong to."""
from peewee import BooleanField, CharField, Check, DateTimeField, ForeignKeyField, IntegerField
from werkzeug.security import check_password_hash, generate_password_hash

from .base import BaseModel, Param, first, now, prepared, write_transaction
from .errors import NotAllowed, ValidationError
from .validation import text_problem

ROLES = ("seller", "manager", "admin")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
# How new passwords are hashed: Werkzeug's scrypt (N=2**15, r=8, p=1, about 0.1 s per hash). Each stored
# hash names its own method, so a hash made with another method still verifies. The test suite lowers
# the cost in tests/conftest.py (it creates and logs in thousands of users); production keeps this.
PASSWORD_HASH_METHOD = "scrypt"
COMMON_PASSWORDS = {"password", "password1", "password12", "password123", "passw0rd", "qwertyuiop", "1234567890",
                    "0123456789", "letmein123", "iloveyou12", "welcome123", "sommer2026", "winter2026",
                    "changeme123", "administrator", "qwerty1234", "1q2w3e4r5t", "abcdefghij", "pipelinecrm"}


def hash_password(password):
    """The stored form of a new password (salted, with the method named in it)."""
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)


def password_problem(password, email=""):
    """Why a new password is refused (None when it is acceptable)."""
    if not password or len(password) < MIN_PASSWORD:
        return f"Use at least {MIN_PASSWORD} characters."
    if len(password) > MAX_PASSWORD:
        return f"Use at most {MAX_PASSWORD} characters."
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(lowered)) < 4:
        return "This password is too easy to guess."
    local = (email or "").split("@")[0].lower()
    if len(local) >= 4 and local in lowered:
        return "Do not use your email address in the password."
    return None


class Team(BaseModel):
    name = CharField(max_length=80, unique=True)
    created_at = DateTimeField(default=now)

    @classmethod
    def create_team(cls, actor, name):
        from .access import require_admin
        from .security import SecurityEvent
        require_admin(actor)
        name = (name or "").strip()
        if not name or len(name) > 80:
            raise ValidationError("The team could not be created.", {"name": "Give the team a name (at most 80 characters)."})
        if text_problem(name):
            raise ValidationError("The team could not be created.", {"name": text_problem(name)})
        if cls.select().where(cls.name == name).exists():
            raise ValidationError("The team could not be created.", {"name": "A team with this name exists."})
        with write_transaction():
            team = cls.create(name=name)
            SecurityEvent.log("team_created", actor=actor, detail=name)
        return team

    def members_for_assignment(self):
        """The team's active sellers and managers, in a stable order (round-robin assignment)."""
        return list(User.select().where((User.team == self.id) & (User.active == True)  # noqa: E712
                                        & User.role.in_(["seller", "manager"])).order_by(User.id))


class User(BaseModel):
    name = CharField(max_length=120)
    email = CharField(max_length=254, unique=True)
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16, default="seller",
                     constraints=[Check("role IN ('seller', 'manager', 'admin')")])
    active = BooleanField(default=True)
    created_at = DateTimeField(default=now)
    team = ForeignKeyField(Team, null=True, backref="members", on_delete="SET NULL")
    # Bumped when the password changes or the user is deactivated: older sessions stop working.
    session_epoch = IntegerField(default=0)

    @property
    def initials(self):
        """Two letters for avatars on cards."""
        parts = [p for p in self.name.split() if p]
        if not parts:
            return "?"
        if len(parts) == 1:
            return parts[0][:2].upper()
        return (parts[0][0] + parts[-1][0]).upper()

    @property
    def is_admin(self):
        return self.role == "admin"

    def check_password(self, password):
        """True when the password matches the stored hash."""
        return bool(password) and len(password) <= MAX_PASSWORD and check_password_hash(self.password_hash, password)

    @classmethod
    def clean_new(cls, email, password, role, team=None, name=""):
        email = (email or "").strip().lower()
        errors = {}
        if not email or "@" not in email or len(email) > 254 or any(c.isspace() or not c.isprintable() for c in email):
            errors["email"] = "Enter a valid email address."
        if text_problem(name or ""):
            errors["name"] = text_problem(name or "")
        problem = password_problem(password, email)
        if problem:
            errors["password"] = problem
        if role not in ROLES:
            errors["role"] = f"Role must be one of {', '.join(ROLES)}."
        team_id = _team_id(team, errors)
        if "email" not in errors and cls.select().where(cls.email == email).exists():
            errors["email"] = "A user with this email already exists."
        if errors:
            raise ValidationError("The user could not be created.", errors)
        return email, team_id

    @classmethod
    def create_user(cls, email, password, name=None, role="seller", team=None, actor=None):
        """Create a user after validating email, password, role and team (actor: the admin doing it,
        None for the command line)."""
        from .security import SecurityEvent
        if actor is not None:
            from .access import require_admin
            require_admin(actor)
        email, team_id = cls.clean_new(email, password, role, team, name)
        name = (name or "").strip()[:120] or email.split("@")[0]
        with write_transaction():
            user = cls.create(email=email, name=name, password_hash=hash_password(password), role=role,
                              team=team_id)
            SecurityEvent.log("user_created", actor=actor, user=user, detail=f"role {role}")
        return user

    # ----- administration ------------------------------------------------------------------------
    def administer(self, actor, role=None, team=None, active=None, name=None):
        """An admin changes role, team, name or active flag; each change is in the security log."""
        from .access import require_admin
        from .security import SecurityEvent
        require_admin(actor)
        errors = {}
        changes = {}
        if role is not None and role != self.role:
            if role not in ROLES:
                errors["role"] = f"Role must be one of {', '.join(ROLES)}."
            else:
                changes["role"] = role
        if team is not None:
            team_id = _team_id(team, errors)
            if "team" not in errors and team_id != self.team_id:
                changes["team"] = team_id
        if name is not None:
            name = name.strip()
            if not name or len(name) > 120:
                errors["name"] = "Give a name of at most 120 characters."
            elif text_problem(name):
                errors["name"] = text_problem(name)
            elif name != self.name:
                changes["name"] = name
        if active is not None and bool(active) != self.active:
            changes["active"] = bool(active)
        if errors:
            raise ValidationError("The user could not be changed.", errors)
        if self.id == actor.id and (changes.get("role", "admin") != "admin" or changes.get("active", True) is False):
            raise NotAllowed("You cannot take away your own administrator role or deactivate yourself.")
        if not changes:
            return False
        with write_transaction():
            if changes.get("active") is False:
                changes["session_epoch"] = self.session_epoch + 1
            for key, value in changes.items():
                setattr(self, key, value)
            self.save()
            for key in ("role", "team", "active", "name"):
                if key in changes:
                    SecurityEvent.log(f"user_{key}_changed", actor=actor, user=self, detail=str(changes[key]))
        return True

    def set_password(self, actor, new_password, current_password=None):
        """Change the password (the user themselves with their current password, or an admin);
        every other session of the user ends."""
        from .access import require_admin
        from .security import SecurityEvent
        if actor is None or actor.id != self.id:
            require_admin(actor)
        elif not self.check_password(current_password or ""):
            raise ValidationError("The password was not changed.", {"current_password": "This is not your current password."})
        problem = password_problem(new_password, self.email)
        if problem:
            raise ValidationError("The password was not changed.", {"password": problem})
        with write_transaction():
            self.password_hash = hash_password(new_password)
            self.session_epoch += 1
            self.save()
            SecurityEvent.log("password_changed" if actor and actor.id == self.id else "password_reset",
                              actor=actor, user=self)

    # ----- sessions ------------------------------------------------------------------------------
    @classmethod
    def signed_in(cls, uid, epoch=None):
        """The active user of a session (user id and session epoch), or None when the session was
        ended by a password change or deactivation (every request asks: a prepared query)."""
        if not isinstance(uid, int) or isinstance(uid, bool):
            return None
        user = first(prepared((cls, "signed_in"), lambda: cls.select().where(
            (cls.id == Param("uid")) & (cls.active == True)), uid=uid))  # noqa: E712
        if user is None or (epoch or 0) != user.session_epoch:
            return None
        return user

    @classmethod
    def authenticate(cls, email, password):
        """The active user with this email and password, or None."""
        user = cls.get_or_none(cls.email == (email or "").strip().lower()[:254])
        if user and user.active and user.check_password(password):
            return user
        return None


def _team_id(team, errors):
    """A team given as id, name, Team or '' (no team) -> its id or None; errors['team'] when unknown."""
    if team in (None, ""):
        return None
    if isinstance(team, Team):
        return team.id
    text = str(team).strip()
    if "\x00" in text:
        errors["team"] = "There is no such team."
        return None
    row = None
    if text.isascii() and text.isdigit() and len(text) < 12:
        row = Team.get_or_none(Team.id == int(text))
    if row is None:
        row = Team.get_or_none(Team.name == text)
    if row is None:
        errors["team"] = "There is no such team."
        return None
    return row.id
