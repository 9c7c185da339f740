"""Opportunities (deals) and the stage rules of the board: one implementation for every caller."""
from dataclasses import dataclass
from decimal import Decimal

from peewee import JOIN, Case, CharField, Check, DateField, DateTimeField, ForeignKeyField, IntegerField, TextField, fn

from .documents import warm_up
from .base import BaseModel, MoneyField, Param, first, now, prepared, slow_work_outside_lock, today, write_transaction
from .errors import NotAllowed, RuleNotMet, ValidationError
from .activity import OnTheBoard
from .history import HistoryEvent, Tracked
from .lead import Lead
from .lines import HasLines, LineBase, check_line_size
from .party import Account, Contact
from .user import User
from .validation import Cleaner
from .access import owned

STAGES = ("develop", "propose", "close")
COLUMNS = ("qualify", "develop", "propose", "close", "fulfill", "invoiced", "lost")
DOCUMENT_STEPS = ("close", "fulfill", "invoiced")  # moves into these may activate a quote / issue an invoice
STAGE_PROBABILITY = {"develop": 20, "propose": 50, "close": 80, "won": 100, "lost": 0}
LOST_REASONS = ("price", "competitor", "no decision", "timing", "other")
REVENUE_MODES = ("calculated", "entered")
COLUMN_LABELS = {"qualify": "Qualify", "develop": "Develop", "propose": "Propose", "close": "Close",
                 "fulfill": "Fulfill", "invoiced": "Invoiced", "lost": "Lost"}
CHECKLISTS = {
    "qualify": ["Name", "Email or phone", "Company (or private buyer)", "Budget", "Purchase timeframe"],
    "develop": ["At least one product line", "Estimated close date", "A customer (account or contact)"],
    "propose": ["An active (sent) quote"],
    "close": ["An active quote", "Actual revenue and close date (asked when you drop the card)"],
    "fulfill": ["An open order (it is fulfilled and invoiced)"],
    "invoiced": [],
    "lost": [],
}


@dataclass
class Move:
    """The outcome of a board move: the card's record after the move and whether anything changed."""

    record: object
    from_column: str
    to_column: str
    changed: bool = True


class Opportunity(Tracked, HasLines, OnTheBoard, BaseModel):
    record_type = "opportunity"

    topic = CharField(max_length=200)
    account = ForeignKeyField(Account, null=True, backref="opportunities", on_delete="RESTRICT")
    contact = ForeignKeyField(Contact, null=True, backref="opportunities", on_delete="RESTRICT")
    lead = ForeignKeyField(Lead, null=True, unique=True, backref="opportunities", on_delete="SET NULL")
    stage = CharField(max_length=16, default="develop",
                      constraints=[Check("stage IN ('develop', 'propose', 'close')")])
    status = CharField(max_length=8, default="open", constraints=[Check("status IN ('open', 'won', 'lost')")])
    column = CharField(max_length=16, null=True, default="develop")
    probability = IntegerField(default=20, constraints=[Check("probability BETWEEN 0 AND 100")])
    revenue_mode = CharField(max_length=12, default="calculated",
                             constraints=[Check("revenue_mode IN ('calculated', 'entered')")])
    estimated_revenue = MoneyField(default=Decimal("0.00"), constraints=[Check("estimated_revenue >= 0")])
    estimated_close_date = DateField(null=True)
    actual_revenue = MoneyField(null=True, constraints=[Check("actual_revenue >= 0")])
    actual_close_date = DateField(null=True)
    close_reason = CharField(max_length=20, null=True)
    competitor = CharField(max_length=200, default="")
    close_note = TextField(default="")
    lost_from = CharField(max_length=16, null=True)
    description = TextField(default="")
    owner = ForeignKeyField(User, null=True, backref="opportunities", on_delete="SET NULL")
    net_total = MoneyField(default=Decimal("0.00"))
    tax_total = MoneyField(default=Decimal("0.00"))
    gross_total = MoneyField(default=Decimal("0.00"))
    version = IntegerField(default=1)
    stage_entered_at = DateTimeField(default=now)
    last_activity_at = DateTimeField(null=True)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    class Meta:
        indexes = ((("column", "estimated_close_date"), False), (("owner", "column"), False))
        # plus opportunity_board_stats, a covering index for the column headers' sums (migration 0006)

    @classmethod
    def access_rule(cls, user, write=False):
        """Who may see / change it: see models/access.py."""
        return owned(cls.owner, user, write)

    @property
    def display_name(self):
        return self.topic

    @property
    def title(self):
        return self.topic

    @property
    def amount(self):
        """The amount shown on the card: actual revenue once won, else the estimate."""
        if self.status == "won" and self.actual_revenue is not None:
            return self.actual_revenue
        return self.estimated_revenue

    @classmethod
    def amount_sql(cls):
        """SQL expression (minor units) of the card amount, for column sums."""
        return Case(None, [((cls.status == "won") & cls.actual_revenue.is_null(False), cls.actual_revenue)],
                    cls.estimated_revenue)

    # ----- editing ---------------------------------------------------------------------------
    @staticmethod
    def clean(data, partial=True):
        """Validate opportunity input (only the keys present are checked)."""
        c = Cleaner(data, complete=not partial)
        c.text("topic", 200, required=True)
        c.record("account", Account, label="account")
        c.record("contact", Contact, label="contact")
        c.integer("probability", minimum=0, maximum=100)
        c.choice("revenue_mode", REVENUE_MODES)
        c.money("estimated_revenue")
        c.date("estimated_close_date")
        c.money("actual_revenue")
        c.date("actual_close_date")
        c.text("competitor", 200)
        c.text("description", 20000, multiline=True)
        c.record("owner", User, label="user")
        values = c.raise_if_errors("The opportunity could not be saved.")
        for key in ("probability", "revenue_mode"):
            if key in values and values[key] is None:
                del values[key]
        return values

    def edit_locked_reason(self):
        if self.status == "won" and self.column == "invoiced":
            return "This deal is invoiced; its figures are final."
        return None

    CLOSED_EDITABLE = ("actual_revenue", "actual_close_date", "competitor", "description", "owner", "topic")

    def prepare_update(self, values):
        if self.status != "open":
            frozen = [name for name in values if name not in self.CLOSED_EDITABLE]
            if frozen:
                raise NotAllowed(f"This deal is {self.status}: its {', '.join(f.replace('_', ' ') for f in frozen)} "
                                 "can no longer change (reopen it first).")
        if "estimated_revenue" in values:
            if values["estimated_revenue"] is None:
                values["estimated_revenue"] = Decimal("0.00")
            values.setdefault("revenue_mode", "entered")
        return values

    def after_update(self, changes):
        if self.revenue_mode == "calculated":
            return self.apply_changes({"estimated_revenue": self.refresh_totals().net})
        return {}

    def lines_locked_reason(self):
        if self.status != "open":
            return "The lines of a closed deal cannot change."
        return None

    def after_lines_changed(self):
        totals = self.refresh_totals()
        if self.revenue_mode == "calculated":
            self.estimated_revenue = totals.net

    # ----- related documents ----------------------------------------------------------------
    def quotes_query(self):
        from .quote import Quote
        return (Quote.select_without("pdf").where(Quote.opportunity == self.id)
                .order_by(Quote.number, Quote.revision))

    def quote_in(self, *statuses):
        from .quote import Quote
        return first(prepared(("quote_in", statuses), lambda: (
            Quote.select().where((Quote.opportunity == Param("opportunity")) & Quote.status.in_(statuses))
            .order_by(Quote.revision.desc()).limit(1)), opportunity=self.id))

    @property
    def order(self):
        from .order import Order
        return (Order.select().where((Order.opportunity == self.id) & (Order.status != "canceled"))
                .order_by(Order.id.desc()).first())

    # ----- board moves ----------------------------------------------------------------------
    @slow_work_outside_lock
    def move_to(self, actor, target, expected_version=None, **inputs):
        """Move the card to a board column, doing the business step; refused moves change nothing."""
        if target not in COLUMNS:
            raise ValidationError("Unknown stage.", {"stage": f"Choose one of: {', '.join(COLUMNS)}."})
        if target in DOCUMENT_STEPS:
            warm_up()  # the PDF machinery's one-time costs, before the lock (not under it)
        with write_transaction():
            self.reload_locked()
            source = self.column
            if source == target:
                return Move(self, source, target, changed=False)
            self.check_version(expected_version)
            if target == "qualify":
                raise NotAllowed("Nothing moves back into Qualify: a qualified lead stays an opportunity.")
            if self.status == "lost":
                if target != self.lost_from:
                    raise NotAllowed(f"This deal is lost. Drag it back to {COLUMN_LABELS[self.lost_from]} "
                                     "to reopen it.")
                self._reopen(actor)
            elif self.status == "won":
                if not (source == "fulfill" and target == "invoiced"):
                    raise NotAllowed("A won deal only moves from Fulfill to Invoiced (fulfil and invoice it).")
                self._fulfil_and_invoice(actor, inputs)
            elif target == "lost":
                self._close_lost(actor, inputs)
            else:
                self._move_open(actor, target, inputs)
        return Move(self, source, self.column)

    def _move_open(self, actor, target, inputs):
        order = ("develop", "propose", "close", "fulfill", "invoiced")
        here, there = order.index(self.stage), order.index(target)
        if there < here:
            return self._move_back(actor, target)
        source = self.column
        changes = self._apply_move_inputs(inputs)
        for step in order[here + 1:there + 1]:
            if step == "propose":
                changes.update(self._enter_propose(actor))
            elif step == "close":
                changes.update(self._enter_close(actor, inputs))
            elif step == "fulfill":
                self._win(actor, inputs, source, changes, write_event=(target == "fulfill"))
            else:
                self._fulfil_and_invoice(actor, inputs, source=source, carried=changes)
        if target in STAGES:
            changes.update(self._set_stage(target))
            self.save_version()
            HistoryEvent.write(actor, self, "move", changes, from_stage=source, to_stage=target)

    def _set_stage(self, stage):
        changes = self.apply_changes({"stage": stage, "column": stage,
                                      "probability": STAGE_PROBABILITY[stage]})
        self.stage_entered_at = now()
        return changes

    def _apply_move_inputs(self, inputs):
        """Fill fields that a dialog supplied (close date, customer, a first line)."""
        values = self.clean({k: v for k, v in inputs.items()
                             if k in ("estimated_close_date", "account", "contact")})
        values = {k: v for k, v in values.items() if v is not None}
        changes = self.apply_changes(values)
        line_input = {k[5:]: v for k, v in inputs.items() if k.startswith("line_") and v not in (None, "")}
        if line_input:
            model = self.line_model
            try:
                values = LineBase.clean(line_input)
                check_line_size(model(**values))
            except ValidationError as exc:  # the inputs are line_*: name them so (and say it at the first line)
                fields = {f"line_{name}": message for name, message in exc.fields.items()}
                fields["line"] = " ".join(f"{name.replace('_', ' ').capitalize()}: {message}"
                                          for name, message in exc.fields.items())
                raise ValidationError(exc.message, fields) from None
            model.create(document=self.id, position=len(self.line_rows()) + 1, **values)
            self.after_lines_changed()
            changes["line"] = (None, values["description"])
        return changes

    def propose_missing(self):
        """What must hold before the deal can enter Propose (field -> message)."""
        missing = {}
        if not self.line_rows():
            missing["line"] = "Add a product line, or a free-text line with an amount."
        if not self.estimated_close_date:
            missing["estimated_close_date"] = "Set the estimated close date."
        if not self.account_id and not self.contact_id:
            missing["customer"] = "Choose the customer (an account or a contact)."
        return missing

    def _enter_propose(self, actor):
        from .quote import Quote
        missing = self.propose_missing()
        if missing:
            raise RuleNotMet("To propose, the deal needs:", missing, step="propose",
                             defaults={"estimated_close_date": self.estimated_close_date})
        changes = {}
        if self.quote_in("draft", "active") is None:
            quote = Quote.create_from_opportunity(actor, self)
            changes["quote"] = (None, quote.display_number)
        return changes

    def _enter_close(self, actor, inputs):
        from .quote import Quote
        changes = {}
        active = self.quote_in("active")
        if active is None:
            draft = self.quote_in("draft") or Quote.create_from_opportunity(actor, self)
            unaskable = {k: v for k, v in draft.activation_missing().items() if k.startswith("settings.")}
            if unaskable:  # the company settings lack what sending it needs: say so before asking to send it
                raise RuleNotMet("The quote is not ready to send.", unaskable, step="close")
            if _truthy(inputs.get("activate_quote")):
                draft.activate(actor, **{k: v for k, v in inputs.items() if k == "valid_until"})
                active = draft
            else:
                raise RuleNotMet("The customer must have an active (sent) quote.",
                                 {"activate_quote": f"Send quote {draft.display_number} to the customer: "
                                                    "it becomes active and read-only."},
                                 step="close", choices={"activate_quote": [(draft.id, draft.display_number)]})
        changes["active_quote"] = (None, active.display_number)
        return changes

    def _move_back(self, actor, target):
        """Back to an earlier stage: an active quote is revised into a new draft revision."""
        changes = {}
        active = self.quote_in("active")
        if active is not None:
            draft = active.revise(actor)
            changes["quote"] = (active.display_number, draft.display_number)
        source = self.column
        changes.update(self._set_stage(target))
        self.save_version()
        HistoryEvent.write(actor, self, "move", changes, from_stage=source, to_stage=target)

    def win_defaults(self):
        """Prefilled values of the win dialog: the active quote's net total and today."""
        active = self.quote_in("active")
        revenue = active.net_total if active is not None else self.estimated_revenue
        return {"actual_revenue": revenue, "actual_close_date": today()}

    def _win(self, actor, inputs, source, changes, write_event=True):
        from .order import Order
        active = self.quote_in("active")
        if active is None:
            self._enter_close(actor, inputs)
            active = self.quote_in("active")
        c = Cleaner(inputs)
        c.money("actual_revenue", key="actual_revenue")
        c.date("actual_close_date", maximum=today(), key="actual_close_date")
        values = c.raise_if_errors("The deal could not be closed as won.")
        missing = {name: label for name, label in (
            ("actual_revenue", "Confirm the actual revenue."),
            ("actual_close_date", "Confirm the actual close date.")) if values.get(name) is None}
        if missing:
            raise RuleNotMet("Confirm the won amount and date.", missing, step="fulfill",
                             defaults=self.win_defaults())
        active.mark_won(actor)
        order = Order.create_from_quote(actor, active)
        changes.update(self.apply_changes({"status": "won", "stage": "close", "column": "fulfill",
                                           "probability": 100, "actual_revenue": values["actual_revenue"],
                                           "actual_close_date": values["actual_close_date"]}))
        changes["order"] = (None, order.display_number)
        self.stage_entered_at = now()
        if write_event:
            self.save_version()
            HistoryEvent.write(actor, self, "won", changes, from_stage=source, to_stage="fulfill")

    def close_as_won(self, actor, expected_version=None, **inputs):
        """Close as won from any open stage: the rules on the way to Fulfill must hold."""
        return self.move_to(actor, "fulfill", expected_version, **inputs)

    def close_as_lost(self, actor, expected_version=None, **inputs):
        """Close as lost (reason always asked; competitor and note optional)."""
        return self.move_to(actor, "lost", expected_version, **inputs)

    def _close_lost(self, actor, inputs):
        c = Cleaner(inputs)
        c.choice("close_reason", LOST_REASONS)
        c.text("competitor", 200)
        c.text("close_note", 5000, multiline=True)
        c.date("actual_close_date", maximum=today())
        values = c.raise_if_errors("The deal could not be closed as lost.")
        if not values.get("close_reason"):
            raise RuleNotMet("Say why the deal was lost.", {"close_reason": "Choose a reason."}, step="lost",
                             choices={"close_reason": [(r, r.capitalize()) for r in LOST_REASONS]},
                             defaults={"competitor": self.competitor}, optional=("competitor", "close_note"))
        for quote in self.quotes_query():
            if quote.status in ("draft", "active"):
                quote.mark_lost(actor)
        source = self.column
        changes = self.apply_changes({"status": "lost", "column": "lost", "probability": 0,
                                      "close_reason": values["close_reason"],
                                      "competitor": values.get("competitor") or self.competitor,
                                      "close_note": values.get("close_note") or "",
                                      "lost_from": source,
                                      "actual_close_date": values.get("actual_close_date") or today(),
                                      "actual_revenue": Decimal("0.00")})
        self.stage_entered_at = now()
        self.save_version()
        HistoryEvent.write(actor, self, "lost", changes, from_stage=source, to_stage="lost",
                           note=values.get("close_note") or None)

    def reopen(self, actor, expected_version=None):
        """Reopen a lost deal into the column it was lost from."""
        if self.status != "lost":
            return Move(self, self.column, self.column, changed=False)
        return self.move_to(actor, self.lost_from, expected_version)

    def _reopen(self, actor):
        target = self.lost_from or "develop"
        changes = self.apply_changes({"status": "open", "stage": target, "column": target,
                                      "probability": STAGE_PROBABILITY[target], "close_reason": None,
                                      "lost_from": None, "actual_close_date": None, "actual_revenue": None})
        self.stage_entered_at = now()
        self.save_version()
        HistoryEvent.write(actor, self, "reopen", changes, from_stage="lost", to_stage=target)

    def _fulfil_and_invoice(self, actor, inputs, source=None, carried=None):
        """Fulfil the open order, create and issue its invoice; the card goes to Invoiced.

        One history event and one version bump on the deal: `carried` holds the changes of a win done in
        the same move, not saved yet (they are saved here, with the column).
        """
        from .invoice import Invoice
        order = self.order
        if order is None or order.status == "canceled":
            raise NotAllowed("There is no open order to fulfil and invoice.")
        if order.status == "open":
            order.fulfil(actor)
        invoice = order.invoice or Invoice.create_from_order(actor, order)
        invoice.issue(actor, sync=False, **{k: v for k, v in inputs.items() if k in ("issue_date",)})
        source = source or self.column
        if carried is None:
            self.reload_locked()
        changes = dict(carried or {})
        changes.update(self.apply_changes({"column": self.board_column()}))
        changes["invoice"] = (None, invoice.number)
        self.stage_entered_at = now()
        self.save_version()
        HistoryEvent.write(actor, self, "won" if carried else "move", changes, from_stage=source,
                           to_stage=self.column)

    def board_column(self):
        """Where the card belongs, derived from the records (used after document actions)."""
        if self.status == "open":
            return self.stage
        if self.status == "lost":
            return "lost"
        order = self.order
        if order is None:
            return None
        invoice = order.invoice
        if order.status == "fulfilled" and invoice is not None and invoice.status in ("issued", "paid"):
            return "invoiced"
        return "fulfill"

    def sync_column(self, actor):
        """Put the card in the column its documents say; one history event when it moves."""
        target = self.board_column()
        if target == self.column:
            return False
        source = self.column
        changes = self.apply_changes({"column": target})
        self.stage_entered_at = now()
        self.save_version()
        HistoryEvent.write(actor, self, "move", changes, from_stage=source, to_stage=target)
        return True

    def move_targets(self):
        """Columns this card can be sent to from where it is (for the Move to… menu)."""
        if self.status == "lost":
            return [self.lost_from] if self.lost_from else []
        if self.status == "won":
            return ["invoiced"] if self.column == "fulfill" else []
        return [c for c in ("develop", "propose", "close", "fulfill", "lost") if c != self.column]

    # ----- board queries --------------------------------------------------------------------
    @classmethod
    def column_stats(cls, where=None):
        """{column: (count, total, weighted)} over whole columns, computed in SQL."""
        return cls.column_stats_rows(cls.stats_query(where).dicts())

    @classmethod
    def stats_query(cls, where=None):
        """Count, total and weighted total per board column (one grouped query)."""
        amount = cls.amount_sql()
        query = (cls.select(cls.column, fn.COUNT(cls.id).alias("n"), fn.SUM(amount).alias("total"),
                            fn.SUM(amount * cls.probability).alias("weighted"))
                 .where(cls.column.is_null(False)))
        if where is not None:
            query = query.where(where)
        return query.group_by(cls.column).dicts()

    @staticmethod
    def column_stats_rows(rows):
        return {row["column"]: (row["n"], _cents(row["total"]), _cents(row["weighted"], 100)) for row in rows}

    @classmethod
    def card_query(cls):
        """Opportunities with the account, contact and owner names a card shows, in one query."""
        Owner = User.alias()
        return (cls.select(cls, Account.id, Account.name, Contact.id, Contact.name, Owner.id, Owner.name)
                .join(Account, JOIN.LEFT_OUTER, on=(cls.account == Account.id)).switch(cls)
                .join(Contact, JOIN.LEFT_OUTER, on=(cls.contact == Contact.id)).switch(cls)
                .join(Owner, JOIN.LEFT_OUTER, on=(cls.owner == Owner.id)))

    @classmethod
    def cards(cls, column, where=None, limit=25, offset=0):
        """A page of cards of a column by close date, with account, contact and owner in one query."""
        query = cls.card_query().where(cls.column == column)
        if where is not None:
            query = query.where(where)
        if column in ("invoiced", "lost"):
            order = (cls.actual_close_date.desc(nulls="LAST"), cls.id.desc())
        else:
            order = (cls.estimated_close_date.asc(nulls="LAST"), cls.id)
        return query.order_by(*order).limit(limit).offset(offset)


class OpportunityLine(LineBase):
    document = ForeignKeyField(Opportunity, backref="lines", on_delete="CASCADE")


Opportunity.line_model = OpportunityLine


def _cents(value, divisor=1):
    """Integer minor units (times divisor) from SQL to Decimal, exact."""
    if value is None:
        return Decimal("0.00")
    from .money import round_money
    return round_money(Decimal(int(value)) / Decimal(100 * divisor))


def _truthy(value):
    return str(value).strip().lower() in ("1", "true", "on", "yes") if value is not None else False
