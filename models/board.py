"""Board queries: column headers computed in SQL over whole columns, one page of cards per column."""
import datetime
from dataclasses import dataclass, field
from decimal import Decimal

from peewee import fn

from .access import combine, owned, scope_key, scope_values, visible_where
from .base import Param, prepared, today
from .lead import QUALIFY_PROBABILITY, Lead
from .opportunity import COLUMN_LABELS, COLUMNS, Opportunity, _cents
from .party import Account, Contact
from .validation import Cleaner

RECENT_DAYS = 30
ZERO = Decimal("0.00")


@dataclass
class BoardFilter:
    """The board's filter, as held in the URL: owner (me / all / id), text, close-date range, old lost."""

    owner: str = "all"
    q: str = ""
    close_from: datetime.date = None
    close_to: datetime.date = None
    show_old: bool = False
    errors: dict = field(default_factory=dict)
    user: object = None

    @classmethod
    def from_args(cls, args, user):
        if not any(args.get(k) for k in ("q", "close_from", "close_to", "owner", "old")):
            flt = cls()  # no filter: the usual board (and nothing to check)
        else:
            c = Cleaner({k: args.get(k) for k in ("q", "close_from", "close_to") if args.get(k) is not None})
            c.text("q", 100)
            c.date("close_from")
            c.date("close_to")
            owner = (args.get("owner") or "all").strip()
            if owner not in ("all", "me") and not (owner.isascii() and owner.isdigit() and len(owner) <= 12):
                c.fail("owner", "Choose an owner.")
                owner = "all"
            flt = cls(owner=owner, q=c.values.get("q") or "", close_from=c.values.get("close_from"),
                      close_to=c.values.get("close_to"), show_old=args.get("old") == "1", errors=c.errors)
        flt.user_id = user.id if user else None
        flt.user = user
        return flt

    @property
    def owner_id(self):
        if self.owner == "me":
            return self.user_id
        return int(self.owner) if self.owner.isascii() and self.owner.isdigit() else None

    def query_args(self, **overrides):
        """The filter as URL query arguments (only those that differ from the defaults)."""
        args = {"owner": self.owner if self.owner != "all" else None, "q": self.q or None,
                "close_from": self.close_from.isoformat() if self.close_from else None,
                "close_to": self.close_to.isoformat() if self.close_to else None,
                "old": "1" if self.show_old else None}
        args.update(overrides)
        return {k: v for k, v in args.items() if v not in (None, "")}

    @property
    def active(self):
        return bool(self.owner != "all" or self.q or self.close_from or self.close_to)

    def shape(self, column=None):
        """What the filter's SQL looks like (its values aside): the key of its prepared queries."""
        return (scope_key(self.user), bool(self.owner_id), bool(self.q), bool(self.close_from),
                bool(self.close_to), not self.show_old and column in (None, "lost", "invoiced"), not self.show_old)

    def values(self):
        """The values of the Param()s in the filter's conditions."""
        cutoff = today() - datetime.timedelta(days=RECENT_DAYS)
        return {"owner": self.owner_id, "q": self.q.lower(), "close_from": self.close_from,
                "close_to": self.close_to, "cutoff": cutoff,
                "cutoff_at": datetime.datetime.combine(cutoff, datetime.time()), **scope_values(self.user)}

    def opportunity_where(self, column=None):
        """The condition on opportunities (with Param()s: run it through `prepared` with values())."""
        O = Opportunity
        cond = combine(O.column.is_null(False), owned(O.owner, self.user))
        if self.owner_id:
            cond &= O.owner == Param("owner")
        if self.close_from:
            cond &= O.estimated_close_date >= Param("close_from")
        if self.close_to:
            cond &= O.estimated_close_date <= Param("close_to")
        if self.q:
            like = Param("q")
            cond &= (fn.LOWER(O.topic).contains(like)
                     | O.account.in_(Account.select(Account.id).where(fn.LOWER(Account.name).contains(like)))
                     | O.contact.in_(Contact.select(Contact.id).where(fn.LOWER(Contact.name).contains(like))))
        if not self.show_old and column in (None, "lost", "invoiced"):
            from .invoice import Invoice
            unpaid = Invoice.select(Invoice.opportunity).where(Invoice.status == "issued")
            recent = (O.column.not_in(["lost", "invoiced"])) | (O.actual_close_date >= Param("cutoff")) | \
                (O.stage_entered_at >= Param("cutoff_at")) | O.id.in_(unpaid)
            cond &= recent
        return cond

    def lead_where(self):
        """The condition on leads (with Param()s, like opportunity_where)."""
        L = Lead
        cond = combine(L.status.in_(["open", "disqualified"]), owned(L.owner, self.user))
        if self.owner_id:
            cond &= L.owner == Param("owner")
        if self.q:
            like = Param("q")
            cond &= (fn.LOWER(L.name).contains(like) | fn.LOWER(L.company).contains(like) | fn.LOWER(L.topic).contains(like))
        if self.close_from or self.close_to:
            cond &= L.id.is_null()
        if not self.show_old:
            cond &= (L.status == "open") | (L.closed_at >= Param("cutoff_at"))
        return cond


@dataclass
class ColumnHeader:
    stage: str
    count: int = 0
    total: Decimal = ZERO
    weighted: Decimal = ZERO

    @property
    def label(self):
        return COLUMN_LABELS[self.stage]


def column_headers(flt, columns=None):
    """Count, total and weighted total of every column (or of `columns`) over the whole filtered column
    (two queries at most)."""
    headers = {stage: ColumnHeader(stage) for stage in COLUMNS}
    wanted = set(columns or COLUMNS)
    values = flt.values()
    deal_columns = tuple(sorted(wanted - {"qualify"})) if columns else None  # None: every column
    if wanted - {"qualify"}:
        def build():  # after a move only the two columns it touched are summed (an index range each)
            where = flt.opportunity_where()
            if deal_columns is not None:
                where &= Opportunity.column.in_(list(deal_columns))
            return Opportunity.stats_query(where)
        stats = prepared(("opportunity-stats", flt.shape(), deal_columns), build, **values)
        for column, (count, total, weighted) in Opportunity.column_stats_rows(stats).items():
            header = headers[column]
            header.count, header.total, header.weighted = count, total, weighted
    if wanted & {"qualify", "lost"}:
        L = Lead
        rows = prepared(("lead-stats", flt.shape()), lambda: (
            L.select(L.status, fn.COUNT(L.id).alias("n"), fn.SUM(L.budget_amount).alias("total"))
            .where(flt.lead_where()).group_by(L.status).dicts()), **values)
        for row in rows:
            stage = "qualify" if row["status"] == "open" else "lost"
            header = headers[stage]
            total = _cents(row["total"])
            header.count += row["n"]
            header.total += total
            if stage == "qualify":
                header.weighted += _cents(int(row["total"] or 0) * QUALIFY_PROBABILITY, 100)
    return headers


def column_cards(stage, flt, offset=0, limit=25):
    """One page of a column's cards (leads and/or opportunities), in display order."""
    values = dict(flt.values(), offset=offset, limit=limit)
    if stage == "qualify":
        return _lead_cards(flt, "open", Lead.created_at.desc(), values)
    if stage == "lost":
        values = dict(values, limit=offset + limit, offset=0)
        leads = _lead_cards(flt, "disqualified", Lead.closed_at.desc(), values)
        opps = _opportunity_cards(flt, "lost", values)
        merged = sorted(leads + opps, key=lambda r: _closed_key(r), reverse=True)
        return merged[offset:offset + limit]
    return _opportunity_cards(flt, stage, values)


def _opportunity_cards(flt, stage, values):
    return list(prepared(("opportunity-cards", stage, flt.shape(stage)), lambda: Opportunity.cards(
        stage, flt.opportunity_where(stage), Param("limit"), Param("offset")), **values))


def _lead_cards(flt, status, order, values):
    return list(prepared(("lead-cards", status, flt.shape()), lambda: (
        Lead.card_query().where(flt.lead_where() & (Lead.status == status))
        .order_by(order, Lead.id.desc()).limit(Param("limit")).offset(Param("offset"))), **values))


def _closed_key(record):
    if isinstance(record, Lead):
        return (record.closed_at or record.updated_at, record.id)
    return (datetime.datetime.combine(record.actual_close_date or datetime.date.min, datetime.time()), record.id)


def attach_next_activities(cards):
    """Give each card its next open activity as `card.next_activity` (None: none), asking the database
    only for cards loaded without it (two queries at most, for the ids on screen)."""
    from .activity import Activity
    for record_type, model in (("lead", Lead), ("opportunity", Opportunity)):
        missing = [c for c in cards if isinstance(c, model) and "next_activity" not in c.__dict__]
        if missing:
            found = Activity.next_open(record_type, [c.id for c in missing])
            for card in missing:
                card.next_activity = found.get(card.id)
    return cards


def writable_cards(cards, user):
    """{(record_type, id)} of the cards `user` may change (drag, move menu) under the access rule
    (two queries at most; none for an admin)."""
    result = set()
    for record_type, model in (("lead", Lead), ("opportunity", Opportunity)):
        ids = [c.id for c in cards if isinstance(c, model)]
        if not ids:
            continue
        condition = visible_where(model, user, write=True)
        if condition is not None:
            ids = [row.id for row in model.select(model.id).where(model.id.in_(ids) & condition)]
        result.update((record_type, pk) for pk in ids)
    return result


@dataclass
class CardFacts:
    """What a card shows besides its fields: where it is, how long it has been there, whether it rots."""

    kind: str
    column: str
    title: str
    customer: str
    amount: Decimal
    close_date: datetime.date
    close_past: bool
    days_in_stage: int
    idle_days: int
    rot: str
    badge: str = ""


def card_facts(card, settings, invoices=None):
    """Facts for rendering one card (no queries beyond what the card query loaded)."""
    now_day = today()
    kind = card.record_type
    column = card.column
    entered = card.stage_entered_at or card.created_at
    last = card.last_activity_at or entered
    days_in_stage = max(0, (now_day - entered.date()).days)
    idle = max(0, (now_day - last.date()).days)
    rot = ""
    limit = settings.rot_days(column)
    if limit and column in ("qualify", "develop", "propose", "close"):
        rot = "red" if idle >= 2 * limit else "amber" if idle >= limit else ""
    if kind == "lead":
        return CardFacts(kind, column, card.title, card.customer_name, card.budget_amount, None, False,
                         days_in_stage, idle, rot)
    close_date = card.actual_close_date if card.status != "open" else card.estimated_close_date
    badge = ""
    if invoices is not None and column == "invoiced":
        invoice = invoices.get(card.id)
        badge = invoice.payment_state if invoice else ""
    return CardFacts(kind, column, card.title, card.customer_name, card.amount, close_date,
                     bool(card.status == "open" and close_date and close_date < now_day),
                     days_in_stage, idle, rot, badge)


def invoice_states(cards):
    """{opportunity id: its latest live invoice} for the Invoiced cards on screen (one query)."""
    from .invoice import Invoice
    ids = [c.id for c in cards if isinstance(c, Opportunity) and c.column == "invoiced"]
    if not ids:
        return {}
    rows = (Invoice.select(Invoice.id, Invoice.opportunity, Invoice.number, Invoice.status, Invoice.due_date)
            .where(Invoice.opportunity.in_(ids) & Invoice.status.in_(["issued", "paid"]))
            .order_by(Invoice.id))
    return {row.opportunity_id: row for row in rows}
