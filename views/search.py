"""Global search: one box that finds leads, deals, accounts, contacts, quotes, orders and invoices."""
import re

from flask import Blueprint, current_app, request
from peewee import JOIN, fn

from models import Account, Contact, Invoice, Lead, Opportunity, Order, Quote

from .common import in_reach, render

bp = Blueprint("search", __name__)

PER_GROUP = 10
MAX_QUERY = 200
QUOTE_NUMBER = re.compile(r"(?:q\s*-?\s*)?#?0*(\d{1,9})(?:\s*(?:rev\.?|r)\s*(\d{1,4}))?", re.I)
ORDER_NUMBER = re.compile(r"(?:so\s*-?\s*)?#?0*(\d{1,9})", re.I)


def _clean(raw):
    """The search text: no NUL or control characters, single spaces, at most MAX_QUERY characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in (raw or ""))
    return " ".join(text.split())[:MAX_QUERY]


def _with_parties(model):
    return (model.select(model, Account.id, Account.name, Contact.id, Contact.name)
            .join(Account, JOIN.LEFT_OUTER, on=(model.account == Account.id)).switch(model)
            .join(Contact, JOIN.LEFT_OUTER, on=(model.contact == Contact.id)).switch(model))


def _groups(text):
    """(key, label, query) for each record type the text can find (within the user's reach), in order."""
    return [(key, label, in_reach(query)) for key, label, query in _all_groups(text)]


def _all_groups(text):
    groups = [
        ("leads", "Leads", Lead.select().where(Lead.name.contains(text) | Lead.company.contains(text)
                                               | Lead.email.contains(text))
         .order_by(Lead.created_at.desc(), Lead.id.desc())),
        ("opportunities", "Opportunities", _with_parties(Opportunity).where(Opportunity.topic.contains(text))
         .order_by(Opportunity.created_at.desc(), Opportunity.id.desc())),
        ("accounts", "Accounts", Account.select().where(Account.name.contains(text) | Account.vat_id.contains(text))
         .order_by(fn.LOWER(Account.name), Account.id)),
        ("contacts", "Contacts", Contact.select(Contact, Account.id, Account.name)
         .join(Account, JOIN.LEFT_OUTER, on=(Contact.account == Account.id))
         .where(Contact.name.contains(text) | Contact.email.contains(text))
         .order_by(fn.LOWER(Contact.name), Contact.id)),
    ]
    quote = QUOTE_NUMBER.fullmatch(text)
    if quote:
        condition = Quote.number == int(quote.group(1))
        if quote.group(2):
            condition &= Quote.revision == int(quote.group(2))
        groups.append(("quotes", "Quotes", _with_parties(Quote).where(condition)
                       .order_by(Quote.number.desc(), Quote.revision.desc())))
    order = ORDER_NUMBER.fullmatch(text)
    if order:
        groups.append(("orders", "Orders", _with_parties(Order).where(Order.number == int(order.group(1)))
                       .order_by(Order.id.desc())))
    condition = Invoice.number.contains(text)
    if text.isdigit() and len(text) <= 9:
        condition |= Invoice.sequence == int(text)
    groups.append(("invoices", "Invoices", _with_parties(Invoice).where(condition)
                   .order_by(Invoice.year.desc(nulls="LAST"), Invoice.sequence.desc(nulls="LAST"), Invoice.id.desc())))
    return groups


LIST_ENDPOINTS = {"leads": ("leads.index", {"status": "all"}),
                  "opportunities": ("opportunities.index", {"status": "all"}),
                  "accounts": ("accounts.index", {}), "contacts": ("contacts.index", {})}


@bp.get("/search")
def index():
    """Results grouped by type (at most PER_GROUP each, with a link to the full list where one exists)."""
    text = _clean(request.args.get("q"))
    results = []
    if text:
        for key, label, query in _groups(text):
            rows = list(query.limit(PER_GROUP + 1))
            endpoint, extra = LIST_ENDPOINTS.get(key, (None, {}))
            more = None
            if len(rows) > PER_GROUP and endpoint in current_app.view_functions:
                more = (endpoint, dict(extra, q=text[:100]))
            results.append({"key": key, "label": label, "items": rows[:PER_GROUP],
                            "more": len(rows) > PER_GROUP, "more_link": more})
    found = sum(len(group["items"]) for group in results)
    return render("search/index.html", "search/_results.html", q=text, results=results, found=found)
