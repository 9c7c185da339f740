"""Leads: people interested in what we sell, qualified into account + contact + opportunity."""
import datetime
from decimal import Decimal

from peewee import BooleanField, CharField, Check, DateTimeField, ForeignKeyField, IntegerField, TextField

from .documents import warm_up
from .base import BaseModel, MoneyField, now, slow_work_outside_lock, today, write_transaction
from .errors import NotAllowed, RuleNotMet, ValidationError
from .activity import OnTheBoard
from .history import HistoryEvent, Tracked
from .party import Account, Contact
from .user import User
from .validation import Cleaner
from .access import check_owner_change, load, may_change, owned, user_id_of

SOURCES = ("web form", "email", "trade show", "referral", "partner", "advertisement", "import", "other")
TIMEFRAMES = ("immediate", "this quarter", "next quarter", "this year", "unknown")
RATINGS = ("hot", "warm", "cold")
STATUSES = ("open", "qualified", "disqualified")
DISQUALIFY_REASONS = ("lost", "cannot contact", "no longer interested", "canceled")
QUALIFY_PROBABILITY = 10


def _quarter_end(day, offset=0):
    quarter = (day.month - 1) // 3 + offset
    year = day.year + quarter // 4
    month = (quarter % 4) * 3 + 3
    next_month = datetime.date(year + (month == 12), month % 12 + 1, 1)
    return next_month - datetime.timedelta(days=1)


def close_date_for(timeframe, day=None):
    """A sensible estimated close date for a purchase timeframe (None when unknown)."""
    day = day or today()
    return {
        "immediate": day + datetime.timedelta(days=14),
        "this quarter": _quarter_end(day),
        "next quarter": _quarter_end(day, 1),
        "this year": datetime.date(day.year, 12, 31),
    }.get(timeframe)


class Lead(Tracked, OnTheBoard, BaseModel):
    record_type = "lead"

    name = CharField(max_length=200)
    company = CharField(max_length=200, default="")
    private_buyer = BooleanField(default=False)
    job_title = CharField(max_length=120, default="")
    email = CharField(max_length=254, default="", index=True)
    phone = CharField(max_length=40, default="")
    source = CharField(max_length=20, default="other")
    campaign = CharField(max_length=80, default="")
    topic = CharField(max_length=200, default="")
    budget_amount = MoneyField(null=True, constraints=[Check("budget_amount >= 0")])
    purchase_timeframe = CharField(max_length=20, null=True)
    decision_maker_known = BooleanField(default=False)
    rating = CharField(max_length=8, default="warm")
    notes = TextField(default="")
    owner = ForeignKeyField(User, null=True, backref="leads", on_delete="SET NULL")
    status = CharField(max_length=16, default="open",
                       constraints=[Check("status IN ('open', 'qualified', 'disqualified')")])
    disqualify_reason = CharField(max_length=32, null=True)
    disqualify_note = TextField(default="")
    version = IntegerField(default=1)
    stage_entered_at = DateTimeField(default=now)
    last_activity_at = DateTimeField(null=True)
    closed_at = DateTimeField(null=True)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    class Meta:
        indexes = ((("status", "created_at"), False),)
        # plus lead_board_stats, a covering index for the column headers' sums (migration 0006)

    @classmethod
    def access_rule(cls, user, write=False):
        """Who may see / change it: see models/access.py."""
        return owned(cls.owner, user, write)

    @property
    def column(self):
        """The board column of the lead (None once qualified: its opportunity is the card)."""
        return {"open": "qualify", "disqualified": "lost"}.get(self.status)

    @property
    def display_name(self):
        return self.name

    @property
    def title(self):
        return self.topic or self.name

    @property
    def customer_name(self):
        return self.company or self.name

    @property
    def probability(self):
        return QUALIFY_PROBABILITY if self.status == "open" else 0

    @property
    def opportunity(self):
        from .opportunity import Opportunity
        return Opportunity.get_or_none(Opportunity.lead == self.id)

    @classmethod
    def card_query(cls):
        """Leads with their owner's name, in one query."""
        from peewee import JOIN
        Owner = User.alias()
        return cls.select(cls, Owner.id, Owner.name).join(Owner, JOIN.LEFT_OUTER, on=(cls.owner == Owner.id))

    @staticmethod
    def clean(data, partial=False):
        """Validate lead input; with partial=True only the keys present are checked."""
        c = Cleaner(data, complete=not partial)
        c.text("name", 200, required=True)
        c.text("company", 200)
        c.boolean("private_buyer")
        c.text("job_title", 120)
        c.email("email")
        c.phone("phone")
        c.choice("source", SOURCES)
        c.text("campaign", 80)
        c.text("topic", 200)
        c.money("budget_amount")
        c.choice("purchase_timeframe", TIMEFRAMES)
        c.boolean("decision_maker_known")
        c.choice("rating", RATINGS)
        c.text("notes", 20000, multiline=True)
        c.record("owner", User, label="user")
        values = c.raise_if_errors("The lead could not be saved.")
        if "source" in values and values["source"] is None:
            values["source"] = "other"
        if "rating" in values and values["rating"] is None:
            values["rating"] = "warm"
        return values

    @classmethod
    def create_lead(cls, actor, note=None, **data):
        """Create an open lead (lands in Qualify) with a history event. Without an actor (a web form)
        the owner is whoever `data` names, or nobody."""
        values = cls.clean(data)
        if values.get("owner") is None:
            values["owner"] = actor
        if actor is not None:
            check_owner_change(actor, actor.id, user_id_of(values["owner"]))
        with write_transaction():
            lead = cls.create(**values)
            HistoryEvent.write(actor, lead, "create", to_stage="qualify", note=note)
        return lead

    @classmethod
    def create_qualified(cls, actor, data, choices=None):
        """A deal straight from a lead's fields `data` (a deal is born from a qualified lead, DESIGN §2):
        the lead is created and qualified in one transaction, with the qualify `choices` (account /
        contact to link); a refusal leaves nothing behind. Returns the opportunity."""
        choices = choices or {}
        with write_transaction():
            return cls.create_lead(actor, **data).qualify(actor, **choices)

    def qualify_missing(self):
        """Fields that must be filled before the lead can be qualified (field -> message)."""
        missing = {}
        if not self.name:
            missing["name"] = "Enter the person's name."
        if not self.email and not self.phone:
            missing["email"] = "Enter an email address or a phone number."
            missing["phone"] = "Enter a phone number or an email address."
        if not self.company and not self.private_buyer:
            missing["company"] = "Enter the company, or mark the lead as a private buyer."
        if self.budget_amount is None:
            missing["budget_amount"] = "Enter the budget."
        if not self.purchase_timeframe:
            missing["purchase_timeframe"] = "Choose the purchase timeframe."
        return missing

    def duplicate_matches(self, actor):
        """Existing accounts (same company name) and contacts (same email) to offer for linking: only
        those `actor` may see (another team's customers stay invisible)."""
        from .access import visible_where

        def in_reach(query, model):
            condition = visible_where(model, actor)
            return list(query if condition is None else query.where(condition))
        accounts = [] if self.private_buyer or not self.company else in_reach(Account.matching_name(self.company),
                                                                                Account)
        contacts = in_reach(Contact.matching_email(self.email), Contact) if self.email else []
        return {"account": accounts, "contact": contacts}

    def qualify(self, actor, expected_version=None, **inputs):
        """Qualify: create or link account and contact, create the opportunity, lead -> qualified.

        Inputs may fill missing lead fields and choose duplicates: account / contact = an id to
        link, or "new" to create. Returns the opportunity (the existing one when already qualified).
        """
        from .opportunity import Opportunity
        lead_values = self.clean({k: v for k, v in inputs.items() if k in LEAD_INPUTS}, partial=True)
        with write_transaction():
            self.reload_locked()
            if self.status == "qualified":
                return self.opportunity
            if self.status == "disqualified":
                raise NotAllowed("This lead is disqualified: reopen it (drag it back to Qualify) first.")
            self.check_version(expected_version)
            changes = self.apply_changes(lead_values)
            missing = self.qualify_missing()
            matches = self.duplicate_matches(actor)
            choices = {}
            for kind in ("account", "contact"):
                if matches[kind] and inputs.get(kind) in (None, ""):
                    names = ", ".join(m.name for m in matches[kind][:3])
                    missing[kind] = f"Possible duplicate: {names}. Link it or create a new {kind}."
                if matches[kind]:
                    choices[kind] = [(m.id, _match_label(m)) for m in matches[kind]]
            if missing:
                raise RuleNotMet("To qualify this lead, fill in what is missing.", missing,
                                 step="develop", choices=choices, defaults=lead_values)
            account = self._resolve(actor, Account, inputs.get("account"), "account")
            if account is None and self.company and not self.private_buyer:
                account = Account.create(name=self.company, email="", phone=self.phone, owner=self.owner or actor)
                HistoryEvent.write(actor, account, "create", note=f"From lead #{self.id}")
            contact = self._resolve(actor, Contact, inputs.get("contact"), "contact")
            if contact is None:
                contact = Contact.create(name=self.name, job_title=self.job_title, email=self.email,
                                         phone=self.phone, account=account, owner=self.owner or actor)
                HistoryEvent.write(actor, contact, "create", note=f"From lead #{self.id}")
            elif account is not None and contact.account_id is None and may_change(contact, actor):
                contact.account = account
                contact.save_version()
                HistoryEvent.write(actor, contact, "update", {"account": (None, account.id)},
                                   note=f"Linked to {account.name} when lead #{self.id} was qualified")
            opportunity = Opportunity.create(
                topic=(self.topic or f"{self.company or self.name}")[:200], account=account,
                contact=contact, lead=self, owner=self.owner or actor, stage="develop",
                column="develop", probability=20, revenue_mode="entered",
                estimated_revenue=self.budget_amount or Decimal("0.00"),
                estimated_close_date=close_date_for(self.purchase_timeframe),
                description=self.notes, last_activity_at=self.last_activity_at)
            changes["status"] = (self.status, "qualified")
            self.status = "qualified"
            self.closed_at = now()
            self.save_version()
            HistoryEvent.write(actor, self, "qualify", changes, from_stage="qualify", to_stage="develop",
                               note=f"Opportunity #{opportunity.id} created")
        return opportunity

    @staticmethod
    def _resolve(actor, model, choice, label):
        """The account / contact chosen to link (None: create a new one); only one `actor` may see."""
        if choice in (None, "", "new"):
            return None
        if isinstance(choice, model):
            choice = choice.id
        try:
            pk = int(str(choice))
        except (TypeError, ValueError):
            pk = 0
        row = load(model, pk, actor) if 0 < pk < 2 ** 63 else None
        if row is None:
            raise ValidationError("The lead could not be qualified.", {label: f"Unknown {label}."})
        return row

    def disqualify(self, actor, expected_version=None, reason=None, note=None):
        """Disqualify an open lead with a reason (always asked); the card goes to Lost."""
        c = Cleaner({"reason": reason, "note": note or ""})
        c.choice("reason", DISQUALIFY_REASONS)
        c.text("note", 5000, multiline=True)
        values = c.raise_if_errors("The lead could not be disqualified.")
        with write_transaction():
            self.reload_locked()
            if self.status == "disqualified":
                return False
            if self.status == "qualified":
                raise NotAllowed("This lead is already qualified: close its opportunity as lost instead.")
            self.check_version(expected_version)
            if not values.get("reason"):
                raise RuleNotMet("Say why the lead is disqualified.",
                                 {"reason": "Choose a reason."}, step="lost", optional=("note",),
                                 choices={"reason": [(r, r.capitalize()) for r in DISQUALIFY_REASONS]})
            changes = {"status": (self.status, "disqualified"),
                       "disqualify_reason": (self.disqualify_reason, values["reason"])}
            self.status = "disqualified"
            self.disqualify_reason = values["reason"]
            self.disqualify_note = values.get("note") or ""
            self.closed_at = now()
            self.stage_entered_at = now()
            self.save_version()
            HistoryEvent.write(actor, self, "disqualify", changes, from_stage="qualify", to_stage="lost",
                               note=self.disqualify_note or None)
        return True

    def reopen(self, actor, expected_version=None):
        """Reopen a disqualified lead: back to Qualify."""
        with write_transaction():
            self.reload_locked()
            if self.status == "open":
                return False
            if self.status == "qualified":
                raise NotAllowed("This lead is qualified; work on its opportunity instead.")
            self.check_version(expected_version)
            changes = {"status": (self.status, "open"), "disqualify_reason": (self.disqualify_reason, None)}
            self.status = "open"
            self.disqualify_reason = None
            self.closed_at = None
            self.stage_entered_at = now()
            self.save_version()
            HistoryEvent.write(actor, self, "reopen", changes, from_stage="lost", to_stage="qualify")
        return True

    def move_targets(self):
        """Columns this card can be sent to from where it is (for the Move to… menu)."""
        if self.status == "disqualified":
            return ["qualify"]
        if self.status == "open":
            return ["develop", "propose", "close", "lost"]
        return []

    @slow_work_outside_lock
    def move_to(self, actor, target, expected_version=None, **inputs):
        """The board move of a lead card: qualify (and go on), disqualify, reopen. Returns a Move."""
        from .opportunity import COLUMNS, Move, Opportunity
        if target not in COLUMNS:
            raise ValidationError("Unknown stage.", {"stage": f"Choose one of: {', '.join(COLUMNS)}."})
        if self.status == "qualified":
            opportunity = self.opportunity
            if opportunity is not None and opportunity.column == target:
                return Move(opportunity, target, target, changed=False)
            raise NotAllowed("This lead is already qualified; move its opportunity instead.")
        source = self.column
        if target == source:
            return Move(self, source, target, changed=False)
        if target == "qualify":
            self.reopen(actor, expected_version)
            return Move(self, source, target)
        if self.status == "disqualified":
            raise NotAllowed("This lead is disqualified: drag it back to Qualify to reopen it first.")
        if target == "lost":
            self.disqualify(actor, expected_version, inputs.get("reason"), inputs.get("note"))
            return Move(self, source, target)
        if target in ("fulfill", "invoiced"):
            raise NotAllowed("A lead must be qualified and proposed before it can be won.")
        if target == "close":
            warm_up()  # the quote may be activated: the PDF machinery's one-time costs before the lock
        with write_transaction():
            opportunity = self.qualify(actor, expected_version, **inputs)
            if target != "develop":
                onward = {k: v for k, v in inputs.items() if k not in ("account", "contact")}
                opportunity.move_to(actor, target, **onward)
        return Move(Opportunity.get_by_id(opportunity.id), source, target)


LEAD_INPUTS = ("name", "company", "private_buyer", "job_title", "email", "phone", "topic",
               "budget_amount", "purchase_timeframe", "decision_maker_known")


def _match_label(row):
    if isinstance(row, Contact):
        where = f" at {row.account.name}" if row.account_id else ""
        return f"{row.name} <{row.email}>{where}"
    city = f", {row.city}" if row.city else ""
    return f"{row.name}{city}"
