"""Web-to-lead: capture forms that turn website visitors into leads in the Qualify column.

An admin defines a form (which lead fields it asks for, which are required, a thank-you message, who
gets the leads — one owner, or round-robin over a team — and the source and campaign tags). The app
serves it as a public page and as an HTML snippet to paste into the company website; both post to
the public endpoint with the form's key. A submission is checked by the same rules as any lead
(Lead.clean). Spam defence: a honeypot field that people never see (a filled one is thanked and
dropped) and rate limits per address and per form, stored in the database so every worker sees them.
A submission whose email matches an open lead is added to that lead as an activity instead of
creating a second lead.
"""
import secrets

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField, fn

from .base import BaseModel, now, write_transaction
from .errors import DomainError, ValidationError
from .lead import SOURCES, Lead
from .security import count_events, record_event
from .user import Team, User
from .validation import Cleaner

# Lead fields a form may ask for, in the order they appear, with the visitor-facing label.
FIELDS = {"name": "Your name", "email": "Email", "company": "Company", "job_title": "Job title",
          "phone": "Phone", "topic": "What are you interested in?", "budget_amount": "Budget",
          "purchase_timeframe": "When do you plan to buy?", "notes": "Message"}
ALWAYS = ("name", "email")           # every form asks for these, and requires them
HONEYPOT = "website_url"             # a field people never see; bots fill it
IP_LIMIT, FORM_LIMIT = 5, 200        # submissions per address per form / per form, per window
WINDOW_MINUTES = 10


class Throttled(DomainError):
    status = 429


class CaptureForm(BaseModel):
    key = CharField(max_length=40, unique=True)
    name = CharField(max_length=120)
    fields = CharField(max_length=300, default="name,email,company,notes")
    required = CharField(max_length=300, default="name,email")
    thank_you = TextField(default="Thank you! We will get back to you shortly.")
    owner = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    team = ForeignKeyField(Team, null=True, on_delete="SET NULL", backref="+")
    last_assigned = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    source = CharField(max_length=20, default="web form")
    campaign = CharField(max_length=80, default="")
    active = BooleanField(default=True)
    submissions = IntegerField(default=0)
    duplicates = IntegerField(default=0)
    spam = IntegerField(default=0)
    created_by = ForeignKeyField(User, null=True, on_delete="SET NULL", backref="+")
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    # ----- definition (admins) -------------------------------------------------------------------
    @property
    def field_list(self):
        return [f for f in self.fields.split(",") if f in FIELDS]

    @property
    def required_list(self):
        return [f for f in self.required.split(",") if f in FIELDS]

    @property
    def assignment(self):
        if self.team_id:
            return f"round-robin over team {self.team.name}"
        if self.owner_id:
            return self.owner.name
        return "nobody (unassigned)"

    @staticmethod
    def clean(data):
        """Validate a form definition (fields and required are lists of lead field names)."""
        c = Cleaner(data)
        c.text("name", 120, required=True)
        c.text("thank_you", 2000, required=True, multiline=True)
        c.choice("source", SOURCES, required=True)
        c.text("campaign", 80)
        c.record("owner", User, label="user")
        c.record("team", Team, label="team")
        c.boolean("active")
        values = c.raise_if_errors("The form could not be saved.")
        errors = {}
        chosen = [f for f in data.get("fields") or () if f]
        required = [f for f in data.get("required") or () if f]
        unknown = [f for f in chosen + required if f not in FIELDS]
        if unknown:
            errors["fields"] = f"Unknown field: {unknown[0][:40]}."
        if values.get("owner") is not None and values.get("team") is not None:
            errors["owner"] = "Choose one owner or a team for round-robin, not both."
        if values.get("owner") is not None and not values["owner"].active:
            errors["owner"] = "This user is deactivated."
        if values.get("team") is not None and not values["team"].members_for_assignment():
            errors["team"] = "This team has no active sellers or managers to assign leads to."
        if errors:
            raise ValidationError("The form could not be saved.", errors)
        fields = [f for f in FIELDS if f in ALWAYS or f in chosen or f in required]
        values["fields"] = ",".join(fields)
        values["required"] = ",".join(f for f in fields if f in ALWAYS or f in required)
        return values

    @classmethod
    def create_form(cls, actor, **data):
        from .access import require_admin
        from .security import SecurityEvent
        require_admin(actor)
        values = cls.clean(data)
        values.setdefault("active", True)
        with write_transaction():
            form = cls.create(key=secrets.token_urlsafe(18), created_by=actor, **values)
            SecurityEvent.log("capture_form_created", actor=actor, detail=f"{form.name} ({form.key})")
        return form

    def update_form(self, actor, **data):
        from .access import require_admin
        from .security import SecurityEvent
        require_admin(actor)
        values = self.clean(data)
        with write_transaction():
            type(self).update(updated_at=now(), **values).where(type(self).id == self.id).execute()
            SecurityEvent.log("capture_form_changed", actor=actor, detail=f"{values['name']} ({self.key})")
        return type(self).get_by_id(self.id)

    # ----- submissions (public) ------------------------------------------------------------------
    @classmethod
    def by_key(cls, key):
        """The active form with this key, or None (an unknown or switched-off form looks the same)."""
        if not isinstance(key, str) or len(key) > 40:
            return None
        return cls.get_or_none((cls.key == key) & (cls.active == True))  # noqa: E712

    def visitor_input(self, form):
        """The submitted values this form asks for (anything else is ignored)."""
        return {name: (form.get(name) or "") for name in self.field_list}

    def submit(self, form, ip):
        """Handle one submission: returns ("created" | "duplicate" | "spam", lead or None).

        Raises ValidationError (field -> message) for bad input and Throttled when the address or
        the form is over its limit; nothing is written then.
        """
        if (form.get(HONEYPOT) or "").strip():
            with write_transaction():
                type(self).update(spam=type(self).spam + 1).where(type(self).id == self.id).execute()
            return "spam", None
        keys = [f"capture:{self.id}:ip:{(ip or '')[:64]}", f"capture:{self.id}"]
        counts = count_events(keys, WINDOW_MINUTES)
        if counts.get(keys[0], 0) >= IP_LIMIT or counts.get(keys[1], 0) >= FORM_LIMIT:
            raise Throttled("Too many submissions from here. Please try again in a few minutes.")
        data = self.visitor_input(form)
        errors = {name: "This field is required." for name in self.required_list if not data.get(name, "").strip()}
        try:
            values = Lead.clean({k: v for k, v in data.items() if v.strip()})
        except ValidationError as exc:
            errors = {**exc.fields, **errors}
        if errors:
            raise ValidationError("Please check the highlighted fields.", errors)
        with write_transaction():
            record_event(keys)
            existing = (Lead.select().where((fn.LOWER(Lead.email) == values["email"].lower())
                                            & (Lead.status == "open"))
                        .order_by(Lead.id).first())
            if existing is not None:
                self._add_to_existing(existing, values)
                return "duplicate", existing
            lead = Lead.create_lead(None, note=f"Web form: {self.name}", owner=self._next_owner(),
                                    source=self.source, campaign=self.campaign,
                                    **{k: v for k, v in data.items() if v.strip()})
            type(self).update(submissions=type(self).submissions + 1).where(type(self).id == self.id).execute()
        return "created", lead

    def _add_to_existing(self, lead, values):
        from .activity import Activity
        lines = [f"{FIELDS[name]}: {values[name]}" for name in self.field_list
                 if name not in ("name", "email") and values.get(name) not in (None, "")]
        Activity.add(None, lead, kind="email", subject=f"Web form again: {self.name}"[:200],
                     body="\n".join([f"{values['name']} <{values['email']}> sent the form again."] + lines))
        type(self).update(duplicates=type(self).duplicates + 1).where(type(self).id == self.id).execute()

    def _next_owner(self):
        """The form's owner, or the next active member of its team after the last one assigned (the
        form's row is locked, so two submissions at once go to two people)."""
        if not self.team_id:
            return self.owner_id
        locked = type(self).get_locked(self.id)
        members = [u.id for u in self.team.members_for_assignment()]
        if not members:
            return None
        later = [m for m in members if locked.last_assigned_id is None or m > locked.last_assigned_id]
        chosen = later[0] if later else members[0]
        type(self).update(last_assigned=chosen).where(type(self).id == self.id).execute()
        return chosen
