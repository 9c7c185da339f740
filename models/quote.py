"""Quotes: numbered, revisioned proposals; frozen (read-only) once active."""
import datetime
from decimal import Decimal

from peewee import BlobField, CharField, Check, DateField, DateTimeField, ForeignKeyField, IntegerField, TextField

from .base import BaseModel, MoneyField, now, slow_work_outside_lock, today, write_transaction
from .errors import NotAllowed, RuleNotMet
from .history import HistoryEvent, Tracked
from .lines import HasLines, LineBase
from .opportunity import Opportunity
from .party import Account, Contact
from .settings import NumberSequence, Settings
from .user import User
from .validation import Cleaner
from .access import through_deal

QUOTE_STATUSES = ("draft", "active", "won", "lost", "revised")


class Quote(Tracked, HasLines, BaseModel):
    record_type = "quote"

    number = IntegerField()
    revision = IntegerField(default=1, constraints=[Check("revision >= 1")])
    opportunity = ForeignKeyField(Opportunity, backref="quotes", on_delete="RESTRICT")
    account = ForeignKeyField(Account, null=True, backref="quotes", on_delete="RESTRICT")
    contact = ForeignKeyField(Contact, null=True, backref="quotes", on_delete="RESTRICT")
    status = CharField(max_length=8, default="draft",
                       constraints=[Check("status IN ('draft', 'active', 'won', 'lost', 'revised')")])
    valid_until = DateField(null=True)
    payment_terms = TextField(default="")
    notes = TextField(default="")
    activated_at = DateTimeField(null=True)
    closed_at = DateTimeField(null=True)
    net_total = MoneyField(default=Decimal("0.00"))
    tax_total = MoneyField(default=Decimal("0.00"))
    gross_total = MoneyField(default=Decimal("0.00"))
    pdf = BlobField(null=True)
    pdf_sha256 = CharField(max_length=64, null=True)
    created_by = ForeignKeyField(User, null=True, backref="+", on_delete="SET NULL")
    version = IntegerField(default=1)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    class Meta:
        indexes = ((("number", "revision"), True), (("opportunity", "status"), False))

    @classmethod
    def access_rule(cls, user, write=False):
        """Its deal's owner and team may see / change it: see models/access.py."""
        return through_deal(cls.opportunity, user, write)

    @property
    def display_number(self):
        return f"Q-{self.number:05d} rev {self.revision}"

    @property
    def file_name(self):
        return f"Q-{self.number:05d}-rev{self.revision}.pdf"

    @property
    def display_name(self):
        return self.display_number

    def lines_locked_reason(self):
        if self.status != "draft":
            return f"Quote {self.display_number} is {self.status} and read-only; revise it to change it."
        return None

    def edit_locked_reason(self):
        """Why the quote's fields cannot be edited now (only a draft can change)."""
        return self.lines_locked_reason()

    @classmethod
    def create_from_opportunity(cls, actor, opportunity, number=None, revision=1):
        """A draft quote with the opportunity's lines, customer, validity and payment terms."""
        settings = Settings.load(logo=False)
        with write_transaction():
            quote = cls.create(
                number=number or NumberSequence.next_value("quote"), revision=revision,
                opportunity=opportunity.id, account=opportunity.account_id, contact=opportunity.contact_id,
                valid_until=today() + datetime.timedelta(days=settings.quote_validity_days),
                payment_terms=settings.payment_terms_text, created_by=actor)
            quote.copy_lines_from(opportunity)
            quote.refresh_totals()
            quote.save()
            HistoryEvent.write(actor, quote, "create", {"status": (None, "draft")},
                               note=f"From opportunity #{opportunity.id}")
        return quote

    def update_fields(self, actor, expected_version=None, **data):
        """Edit a draft quote's validity, terms and notes."""
        c = Cleaner(data)
        c.date("valid_until")
        c.text("payment_terms", 2000, multiline=True)
        c.text("notes", 5000, multiline=True)
        values = c.raise_if_errors("The quote could not be saved.")
        with write_transaction():
            self.reload_locked()
            self.check_version(expected_version)
            self._ensure_lines_editable()
            changes = self.apply_changes(values)
            if not changes:
                return False
            self.save_version()
            HistoryEvent.write(actor, self, "update", changes)
        return True

    def active_sibling(self):
        """Another quote of the same deal that is active (only one may be), or None."""
        return (Quote.select_without("pdf").where((Quote.opportunity == self.opportunity_id)
                                                  & (Quote.status == "active") & (Quote.id != self.id)).first())

    def possible_actions(self):
        """The lifecycle steps this quote's state allows (the methods refuse anything else)."""
        return {"draft": ["activate", "lose"], "active": ["win", "revise", "lose"]}.get(self.status, [])

    def activation_missing(self):
        """What a quote needs before it can be sent (field -> message)."""
        missing = {}
        if not self.line_rows():
            missing["line"] = "Add at least one line."
        if self.valid_until is None or self.valid_until < today():
            missing["valid_until"] = "Set a valid-until date from today on."
        if not self.account_id and not self.contact_id:
            missing["customer"] = "Choose the customer (an account or a contact)."
        else:
            from .documents import vat_id_for_sales_abroad
            missing.update(vat_id_for_sales_abroad(self, Settings.load(logo=False)))
        return missing

    @slow_work_outside_lock
    def activate(self, actor, expected_version=None, **inputs):
        """Draft -> active (sent to the customer, read-only). Only one active quote per opportunity."""
        c = Cleaner(inputs)
        c.date("valid_until", minimum=today())
        values = {k: v for k, v in c.raise_if_errors("The quote could not be activated.").items() if v}
        from .documents import freeze, warm_up
        warm_up()
        with write_transaction():
            self.reload_locked()
            if self.status == "active":
                return False
            if self.status != "draft":
                raise NotAllowed(f"Quote {self.display_number} is {self.status}; only a draft can be activated.")
            self.check_version(expected_version)
            changes = self.apply_changes(values)
            missing = self.activation_missing()
            if missing:
                raise RuleNotMet("The quote is not ready to send.", missing, step="close",
                                 defaults={"valid_until": self.valid_until})
            other = self.active_sibling()
            if other is not None:
                raise NotAllowed(f"Quote {other.display_number} is already active for this deal: "
                                 "revise or close it first.")
            changes["status"] = ("draft", "active")
            self.status = "active"
            self.activated_at = now()
            self.refresh_totals()
            changes["pdf_sha256"] = (None, freeze(self))
            self.save_version()
            HistoryEvent.write(actor, self, "activate", changes)
        return True

    def revise(self, actor, expected_version=None):
        """Active -> revised, and a new draft revision with the same lines. Returns the new draft.
        The deal's row is locked before the quote's, in the order a board move takes them (no deadlock)."""
        with write_transaction():
            Opportunity.get_locked(self.opportunity_id)
            self.reload_locked()
            if self.status == "revised":
                return Quote.get((Quote.number == self.number) & (Quote.revision == self.revision + 1))
            if self.status != "active":
                raise NotAllowed(f"Only an active quote can be revised; {self.display_number} is {self.status}.")
            self.check_version(expected_version)
            self.status = "revised"
            self.closed_at = now()
            self.save_version()
            HistoryEvent.write(actor, self, "revise", {"status": ("active", "revised")})
            draft = Quote.create(
                number=self.number, revision=self.revision + 1, opportunity=self.opportunity_id,
                account=self.account_id, contact=self.contact_id,
                valid_until=max(self.valid_until or today(), today()), payment_terms=self.payment_terms,
                notes=self.notes, created_by=actor)
            draft.copy_lines_from(self)
            draft.refresh_totals()
            draft.save()
            HistoryEvent.write(actor, draft, "create", {"status": (None, "draft")},
                               note=f"Revision of {self.display_number}")
        return draft

    def mark_won(self, actor):
        """Active -> won (called by the opportunity when it is closed as won); decided on the locked row."""
        self.reload_locked()
        if self.status == "won":
            return False
        if self.status != "active":
            raise NotAllowed(f"Only an active quote can be won; {self.display_number} is {self.status}.")
        self.status = "won"
        self.closed_at = now()
        self.save_version()
        HistoryEvent.write(actor, self, "won", {"status": ("active", "won")})
        return True

    def mark_lost(self, actor):
        """Draft/active -> lost; decided on the locked row (a stale copy would overwrite a concurrent change)."""
        self.reload_locked()
        if self.status == "lost":
            return False
        if self.status not in ("draft", "active"):
            raise NotAllowed(f"Quote {self.display_number} is {self.status}; it cannot be lost.")
        old = self.status
        self.status = "lost"
        self.closed_at = now()
        self.save_version()
        HistoryEvent.write(actor, self, "lost", {"status": (old, "lost")})
        return True

    def win(self, actor, expected_version=None, **inputs):
        """Accept this quote: closes its opportunity as won (the one rule on the opportunity).
        The deal's row is locked before the quote's, in the order a board move takes them (no deadlock)."""
        with write_transaction():
            Opportunity.get_locked(self.opportunity_id)
            self.reload_locked()
            if self.status == "won":
                return False
            self.check_version(expected_version)
            if self.status != "active":
                raise NotAllowed(f"Only an active quote can be won; {self.display_number} is {self.status}.")
            self.opportunity.close_as_won(actor, **inputs)
        return True

    def lose(self, actor, expected_version=None):
        """Mark this quote lost (the deal stays open for another revision)."""
        with write_transaction():
            self.reload_locked()
            if self.status == "lost":
                return False
            self.check_version(expected_version)
            return self.mark_lost(actor)


class QuoteLine(LineBase):
    document = ForeignKeyField(Quote, backref="lines", on_delete="CASCADE")


Quote.line_model = QuoteLine
