"""Opportunity pages: the detail panel with inline fields, the line editor and the timeline."""
from flask import Blueprint, g, request

from models import Account, Activity, Contact, HistoryEvent, Invoice, Opportunity, Order
from models.opportunity import REVENUE_MODES

from .common import assignable_choices, in_reach, owner_choices, render, url_record
from .inline import Field, register_fields
from .lines import lines_context, register_lines

bp = Blueprint("opportunities", __name__)


_owners = owner_choices


def _accounts():
    return [(a.id, a.name) for a in in_reach(Account.select(Account.id, Account.name)).order_by(Account.name).limit(1000)]


def _contacts():
    return [(c.id, c.name) for c in in_reach(Contact.select(Contact.id, Contact.name)).order_by(Contact.name).limit(1000)]


def _open(record):
    return record.status == "open"


FIELDS = [
    Field("topic", "Topic"),
    Field("account", "Account", "record", _accounts, rule="propose"),
    Field("contact", "Contact", "record", _contacts, rule="propose"),
    Field("estimated_revenue", "Estimated revenue", "money", editable=_open),
    Field("revenue_mode", "Revenue", "select", [(m, "Calculated from the lines" if m == "calculated" else "Entered by hand")
                                                for m in REVENUE_MODES], editable=_open),
    Field("probability", "Probability %", "number", editable=_open),
    Field("estimated_close_date", "Expected close", "date", rule="propose", editable=_open),
    Field("competitor", "Competitor"),
    Field("owner", "Owner", "record", assignable_choices),
    Field("description", "Description", "textarea", max_length=20000),
]
WON_FIELDS = [
    Field("actual_revenue", "Actual revenue", "money"),
    Field("actual_close_date", "Closed on", "date"),
]


def _card_refresh(opportunity):
    from .board import card_refresh
    return card_refresh(opportunity)


register_fields(bp, Opportunity, "opportunity", "opportunities", FIELDS + WON_FIELDS, on_saved=_card_refresh)
register_lines(bp, Opportunity, "opportunity", "opportunities", on_saved=_card_refresh)


def panel_context(opportunity):
    """Fields, lines and totals, related documents and the timeline (including the lead's)."""
    quotes = list(opportunity.quotes_query())
    orders = list(Order.select().where(Order.opportunity == opportunity.id).order_by(Order.id))
    invoices = list(Invoice.select_without("pdf").where(Invoice.opportunity == opportunity.id).order_by(Invoice.id))
    related = [opportunity] + quotes + orders + invoices
    people = [opportunity]
    if opportunity.lead_id:
        related.append(opportunity.lead)
        people.append(opportunity.lead)
    fields = FIELDS + (WON_FIELDS if opportunity.status != "open" else [])
    return {"record": opportunity, "opportunity": opportunity, "fields": fields, "kind": "opportunity",
            "endpoint": "opportunities", "quotes": quotes, "orders": orders, "invoices": invoices,
            "events": list(HistoryEvent.about(*related).limit(200)),
            "activities": list(Activity.regarding(*people).limit(100)),
            **lines_context(opportunity, "opportunity", "opportunities")}


@bp.get("/opportunities/<int:opportunity_id>")
def detail(opportunity_id):
    """The opportunity's panel; a full page when opened directly."""
    opportunity = url_record("opportunity_id")
    return render("opportunities/detail.html", "opportunities/_panel.html", **panel_context(opportunity))


def _opportunity_filters(args):
    from peewee import fn
    query = in_reach(Opportunity.card_query())
    text = (args.get("q") or "").strip().lower()[:100]
    if text:
        like = text
        query = query.where(fn.LOWER(Opportunity.topic).contains(like) | fn.LOWER(Account.name).contains(like)
                            | fn.LOWER(Contact.name).contains(like))
    status = args.get("status", "open")
    if status in ("open", "won", "lost"):
        query = query.where(Opportunity.status == status)
    if args.get("stage") in ("develop", "propose", "close"):
        query = query.where(Opportunity.stage == args["stage"])
    owner = args.get("owner") or ""
    if owner == "me":
        query = query.where(Opportunity.owner == g.user.id)
    elif owner.isdigit() and len(owner) < 12:
        query = query.where(Opportunity.owner == int(owner))
    from models.validation import Cleaner
    c = Cleaner({k: args[k] for k in ("close_from", "close_to") if args.get(k)})
    c.date("close_from")
    c.date("close_to")
    if c.values.get("close_from"):
        query = query.where(Opportunity.estimated_close_date >= c.values["close_from"])
    if c.values.get("close_to"):
        query = query.where(Opportunity.estimated_close_date <= c.values["close_to"])
    return query, c.errors


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"topic": Opportunity.topic, "customer": Account.name, "amount": Opportunity.amount_sql(),
            "probability": Opportunity.probability, "close": Opportunity.estimated_close_date,
            "stage": Opportunity.column, "created": Opportunity.created_at}


@bp.get("/opportunities")
def index():
    """All deals, filtered, sorted and paged; the filters live in the URL."""
    from .listing import paginate
    query, errors = _opportunity_filters(request.args)
    sorts = _sorts()
    page = paginate(query, sorts, "close", tiebreak=Opportunity.id)
    return render("opportunities/index.html", "opportunities/_list.html", page=page, owners=_owners(),
                  args=request.args, errors=errors)


EXPORT_COLUMNS = [
    ("ID", lambda r: r.id), ("Topic", lambda r: r.topic), ("Account", lambda r: r.account.name if r.account_id else None),
    ("Contact", lambda r: r.contact.name if r.contact_id else None), ("Stage", lambda r: r.column or r.stage),
    ("Status", lambda r: r.status), ("Probability %", lambda r: r.probability), ("Amount", lambda r: r.amount),
    ("Estimated close", lambda r: r.estimated_close_date), ("Actual revenue", lambda r: r.actual_revenue),
    ("Actual close", lambda r: r.actual_close_date), ("Owner", lambda r: r.owner.name if r.owner_id else None),
    ("Created", lambda r: r.created_at),
]


@bp.get("/opportunities/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("opportunities", _opportunity_filters(request.args)[0], _sorts(), "close", EXPORT_COLUMNS, tiebreak=Opportunity.id)
