"""Builders for model tests: records made through the real model methods, one step at a time."""
import datetime
import os
import uuid
from decimal import Decimal

from models import (Account, Contact, HistoryEvent, Invoice, Lead, Opportunity, Order, Quote, Settings, db)
from models.base import today

LINE = {"description": "Consulting day", "quantity": "2", "unit_price": "1000.00", "discount_pct": "10",
        "tax_rate": "19"}
SECOND_LINE = {"description": "Travel", "quantity": "1.5", "unit_price": "80.10", "tax_rate": "7"}
COMPANY_POSTAL = {"address": "Gutenbergstraße 14\n70176 Stuttgart\nGermany", "vat_id": "DE287654321"}
CUSTOMER_ADDRESS = {"street": "Hafenstraße 3", "postal_code": "20457", "city": "Hamburg", "country": "DE"}


def tag():
    """A short unique marker, so names and emails never collide across builders and processes."""
    return f"{os.getpid():x}{uuid.uuid4().hex[:8]}"


def lead_data(**overrides):
    """Input for a lead that satisfies every qualify rule (unique company and email)."""
    t = tag()
    data = {"name": f"Lena Lead {t}", "company": f"Acme {t} GmbH", "email": f"lena.{t}@example.com",
            "phone": "+49 30 1234567", "topic": f"Fleet software {t}", "budget_amount": "12500.00",
            "purchase_timeframe": "this quarter", "notes": "Met at the trade show; wants a demo."}
    data.update(overrides)
    return data


def make_lead(actor, **overrides):
    return Lead.create_lead(actor, **lead_data(**overrides))


def make_opportunity(actor, lines=(), **lead_overrides):
    """A qualified lead's opportunity in Develop, with the given lines added."""
    opportunity = make_lead(actor, **lead_overrides).qualify(actor)
    add_postal_data(opportunity)
    for line in lines:
        opportunity.add_line(actor, **line)
    return fresh(opportunity)


def add_postal_data(opportunity):
    """The postal data an issued e-invoice needs: the company's address and VAT id, the customer's address."""
    settings = Settings.load()
    blank = {name: value for name, value in COMPANY_POSTAL.items() if not getattr(settings, name)}
    if blank:
        Settings.update(**blank).where(Settings.id == settings.id).execute()
    party, party_id = (Account, opportunity.account_id) if opportunity.account_id else (Contact, opportunity.contact_id)
    party.update(**CUSTOMER_ADDRESS).where((party.id == party_id) & (party.street == "")).execute()


def make_proposed(actor, lines=(LINE,), **lead_overrides):
    """An opportunity in Propose with a draft quote."""
    opportunity = make_opportunity(actor, lines, **lead_overrides)
    opportunity.move_to(actor, "propose")
    return fresh(opportunity)


def make_closing(actor, lines=(LINE,), **lead_overrides):
    """An opportunity in Close with an active quote."""
    opportunity = make_proposed(actor, lines, **lead_overrides)
    opportunity.move_to(actor, "close", activate_quote="1")
    return fresh(opportunity)


def win_inputs(opportunity=None, revenue=None):
    """The win dialog filled in with its defaults (active quote net total, today)."""
    if revenue is None:
        revenue = opportunity.win_defaults()["actual_revenue"] if opportunity is not None else "1000.00"
    return {"actual_revenue": str(revenue), "actual_close_date": today().isoformat()}


def make_won_deal(actor, lines=(LINE,), **lead_overrides):
    """A won opportunity in Fulfill with its open order."""
    opportunity = make_closing(actor, lines, **lead_overrides)
    opportunity.move_to(actor, "fulfill", **win_inputs(opportunity))
    return fresh(opportunity)


def make_draft_invoice(actor, lines=(LINE,), **lead_overrides):
    """A draft invoice of a fulfilled order of a won deal."""
    opportunity = make_won_deal(actor, lines, **lead_overrides)
    order = opportunity.order
    order.fulfil(actor)
    return Invoice.create_from_order(actor, fresh(order))


def make_draft_invoices(actor, count, lines=(LINE,)):
    return [make_draft_invoice(actor, lines) for _ in range(count)]


def fresh(record):
    """The record as stored now."""
    return type(record).get_by_id(record.id)


def row(record):
    """The stored row of a record as a plain dict (every column, including version)."""
    model = type(record)
    return model.select().where(model.id == record.id).dicts().get()


def events(record):
    """History events about one record, oldest first."""
    return list(HistoryEvent.select().where((HistoryEvent.record_type == record.record_type)
                                            & (HistoryEvent.record_id == record.id)).order_by(HistoryEvent.id))


def line_values(document):
    """The business values of a document's lines, in order (for comparing copies)."""
    return [(l.description, l.quantity, l.unit, l.unit_price, l.discount_pct, l.tax_rate, l.product_id)
            for l in document.line_rows()]


def world_counts():
    """Row counts of every table a business step can write to."""
    from models import MODELS
    return {m.__name__: m.select().count() for m in MODELS}


def snapshot(record):
    """Everything a refused change must leave untouched: the record's row and every table's row count."""
    return row(record), world_counts()


def last_year():
    return today().year - 1


def days_ago(n):
    return today() - datetime.timedelta(days=n)


__all__ = ["Account", "Contact", "Decimal", "HistoryEvent", "Invoice", "Lead", "Opportunity", "Order", "Quote",
           "db", "LINE", "SECOND_LINE", "lead_data", "make_lead", "make_opportunity", "make_proposed",
           "make_closing", "make_won_deal", "make_draft_invoice", "make_draft_invoices", "win_inputs", "fresh",
           "row", "events", "line_values", "world_counts", "snapshot", "last_year", "days_ago", "tag"]
