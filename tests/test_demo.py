"""The demo seed: every board column filled, documents in every state, idempotent and deterministic."""
import datetime
from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from models import (MODELS, Account, Activity, Contact, HistoryEvent, Invoice, Lead, NumberSequence, Opportunity,
                    OpportunityLine, Order, Product, Quote, Settings, User, db)
from models.base import make_database, now, today
from models.demo import DEMO_LOGINS, seed_demo
from models.schema import upgrade

EXPECTED_COLUMNS = {"develop": 10, "propose": 8, "close": 7, "fulfill": 6, "invoiced": 8, "lost": 5}


@pytest.fixture
def seeded(database):
    assert seed_demo() is True
    return database


def row_counts():
    return {model.__name__: model.select().count() for model in MODELS}


def canonical_dump():
    """The seeded data without wall-clock values (password hashes, updated_at), ordered by id."""
    def rows(model, *fields):
        return [tuple(getattr(r, f) for f in fields) for r in model.select().order_by(model.id)]
    return {
        "users": rows(User, "email", "name", "role", "created_at"),
        "settings": rows(Settings, "company_name", "address", "vat_id", "bank_details", "currency",
                         "payment_terms_days", "payment_terms_text"),
        "products": rows(Product, "sku", "name", "unit", "list_price", "tax_rate", "active", "created_at"),
        "accounts": rows(Account, "name", "street", "postal_code", "city", "country", "vat_id", "owner_id",
                         "created_at"),
        "contacts": rows(Contact, "name", "job_title", "email", "phone", "account_id", "created_at"),
        "leads": rows(Lead, "name", "company", "email", "source", "topic", "budget_amount", "purchase_timeframe",
                      "rating", "status", "disqualify_reason", "owner_id", "created_at", "stage_entered_at",
                      "last_activity_at", "closed_at"),
        "opportunities": rows(Opportunity, "topic", "column", "stage", "status", "probability", "revenue_mode",
                              "estimated_revenue", "estimated_close_date", "actual_revenue", "actual_close_date",
                              "close_reason", "competitor", "account_id", "contact_id", "lead_id", "owner_id",
                              "created_at", "stage_entered_at", "last_activity_at"),
        "lines": rows(OpportunityLine, "document_id", "product_id", "quantity", "unit_price", "discount_pct",
                      "tax_rate"),
        "quotes": rows(Quote, "number", "revision", "opportunity_id", "status", "valid_until", "net_total",
                       "tax_total", "gross_total", "notes", "activated_at", "closed_at"),
        "orders": rows(Order, "number", "quote_id", "status", "order_date", "net_total", "gross_total",
                       "fulfilled_at"),
        "invoices": rows(Invoice, "number", "order_id", "status", "issue_date", "due_date", "paid_on",
                         "net_total", "tax_total", "gross_total", "cancel_reason"),
        "activities": rows(Activity, "kind", "subject", "body", "due_date", "done", "record_type", "record_id",
                           "owner_id", "created_at", "done_at"),
        "history": rows(HistoryEvent, "record_type", "record_id", "action", "from_stage", "to_stage", "changes",
                        "note", "actor_id", "at"),
    }


def _fills_every_board_column():
    stats = Opportunity.column_stats()
    assert {column: count for column, (count, _, _) in stats.items() if column} == EXPECTED_COLUMNS
    for column, (count, total, weighted) in stats.items():
        assert isinstance(total, Decimal) and isinstance(weighted, Decimal)
        if column != "lost":
            assert total > 0 and weighted > 0
    assert Lead.select().where(Lead.status == "open").count() == 12
    assert Lead.select().where(Lead.status == "disqualified").count() == 4
    assert {lead.disqualify_reason for lead in Lead.select().where(Lead.status == "disqualified")} == \
        {"lost", "cannot contact", "no longer interested", "canceled"}
    open_leads = list(Lead.select().where(Lead.status == "open"))
    assert any(lead.qualify_missing() for lead in open_leads)
    assert any(lead.duplicate_matches(lead.owner)["account"] for lead in open_leads)
    assert len({lead.source for lead in open_leads}) >= 5 and {lead.rating for lead in open_leads} == \
        {"hot", "warm", "cold"}
    lost = list(Opportunity.select().where(Opportunity.status == "lost"))
    assert all(o.close_reason for o in lost) and sum(bool(o.competitor) for o in lost) >= 2
    assert {o.lost_from for o in lost} == {"develop", "propose", "close"}
    assert Opportunity.select().where(Opportunity.column.is_null()).count() == 1
    assert len({o.owner_id for o in Opportunity.select()}) >= 3


def _company_catalog_accounts_logins_and_activities():
    settings = Settings.load()
    assert settings.company_name and settings.vat_id.startswith("DE") and "IBAN" in settings.bank_details
    assert "BIC" in settings.bank_details and settings.payment_terms_days == 30 and settings.currency == "EUR"
    products = list(Product.select())
    assert 14 <= len(products) <= 18
    assert {p.tax_rate for p in products} == {Decimal("19.00"), Decimal("7.00"), Decimal("0.00")}
    assert sum(p.tax_rate == 0 for p in products) == 1 and any(not p.active for p in products)
    accounts = list(Account.select().where(Account.vat_id != ""))
    assert len(accounts) >= 20 and len({a.country for a in accounts}) >= 6
    for account in accounts:
        assert 1 <= account.contacts.count() <= 3 and account.city and account.street
    for email, password, role in DEMO_LOGINS:
        assert len(password) >= 8
        user = User.authenticate(email, password)
        assert user is not None and user.role == role
    assert sorted(role for _, _, role in DEMO_LOGINS) == ["admin", "manager", "seller", "seller"]
    for opportunity in Opportunity.select():
        lines = opportunity.line_rows()
        assert len(lines) <= 4
        if opportunity.stage != "develop" or opportunity.status != "open":
            assert lines
    activities = list(Activity.select())
    assert {a.kind for a in activities} == {"note", "call", "email", "meeting", "task"}
    tasks = [a for a in activities if a.kind == "task" and not a.done]
    assert any(a.overdue for a in tasks) and any(a.due_date >= today() for a in tasks)
    settings = Settings.load()
    for stage in ("develop", "propose", "close"):
        cutoff = now() - datetime.timedelta(days=settings.rot_days(stage))
        deals = list(Opportunity.select().where(Opportunity.column == stage))
        assert any(d.last_activity_at < cutoff and d.stage_entered_at < cutoff for d in deals), stage
        assert any(d.last_activity_at > cutoff for d in deals), stage
        assert len({d.estimated_close_date for d in deals}) > 1
    close_dates = [o.estimated_close_date for o in Opportunity.select().where(Opportunity.status == "open")]
    assert min(close_dates) < today() < max(close_dates)
    assert min(close_dates) >= today() - datetime.timedelta(days=21)
    assert max(close_dates) <= today() + datetime.timedelta(days=124)
    actions = {e.action for e in HistoryEvent.select(HistoryEvent.action).distinct()}
    assert {"create", "qualify", "add_line", "move", "activate", "revise", "won", "fulfil", "issue", "paid",
            "cancel", "lost", "disqualify"} <= actions
    last = {}
    for event in HistoryEvent.select().order_by(HistoryEvent.id):
        key = (event.record_type, event.record_id)
        assert event.at < now()
        assert last.get(key, event.at) <= event.at, key
        last[key] = event.at


def _documents_state_the_dates_of_their_records():
    """The demo plays its story on its own clock, so a frozen quote says the day it was sent and the
    validity on its record, an invoice its issue and delivery dates, a credit note the day of the cancel
    (they once said the day the demo was seeded)."""
    from models import CreditNote
    from models.documents import _long_date
    from test_documents_pdf import pdftotext
    frozen = list(Quote.select().where(Quote.pdf_sha256.is_null(False)))
    assert frozen
    for quote in frozen:
        text = " ".join(pdftotext(bytes(quote.pdf)).split())
        assert f"Date {_long_date(quote.activated_at.date())}" in text, quote.display_number
        assert f"Valid until {_long_date(quote.valid_until)}" in text, quote.display_number
    periods = [(i.period_start, i.period_end) for i in Invoice.select() if i.period_start]
    assert periods and all(start < end for start, end in periods)  # the subscriptions' invoices name their period
    for invoice in Invoice.select():
        text = " ".join(pdftotext(bytes(invoice.pdf)).split())
        assert f"Invoice date {_long_date(invoice.issue_date)}" in text, invoice.number
        if invoice.period_start:
            assert (f"for the period from {_long_date(invoice.period_start)} to {_long_date(invoice.period_end)}"
                    in text), invoice.number
        elif invoice.order.fulfilled_at:
            assert f"delivered on {_long_date(invoice.order.fulfilled_at.date())}" in text, invoice.number
    credit = CreditNote.get()
    canceled = HistoryEvent.get((HistoryEvent.record_type == "invoice") & (HistoryEvent.action == "cancel"))
    assert credit.issue_date == canceled.at.date() < today()
    assert f"Date {_long_date(credit.issue_date)}" in " ".join(pdftotext(bytes(credit.pdf)).split())


def _documents_in_every_state_with_gapless_numbers():
    assert {q.status for q in Quote.select()} == {"draft", "active", "revised", "won", "lost"}
    revised = Quote.get(Quote.status == "revised")
    assert Quote.get((Quote.number == revised.number) & (Quote.revision == 2)).status == "active"
    for opportunity in Opportunity.select().where(Opportunity.column == "propose"):
        assert opportunity.quote_in("draft") is not None
    for opportunity in Opportunity.select().where(Opportunity.column == "close"):
        assert opportunity.quote_in("active") is not None
    for opportunity in Opportunity.select().where(Opportunity.column == "fulfill"):
        assert opportunity.order.status == "open"
    assert {o.status for o in Order.select()} == {"open", "fulfilled", "canceled"}
    invoices = list(Invoice.select())
    states = Counter(invoice.payment_state for invoice in invoices)
    assert states["paid"] >= 2 and states["unpaid"] >= 2 and states["overdue"] >= 2 and states["canceled"] == 1
    assert all(invoice.number for invoice in invoices)
    for opportunity in Opportunity.select().where(Opportunity.column == "invoiced"):
        assert opportunity.order.invoice.status in ("issued", "paid")
    for invoice in invoices:
        if invoice.status == "paid":
            assert invoice.issue_date <= invoice.paid_on <= today()
        assert invoice.due_date == invoice.issue_date + datetime.timedelta(days=invoice.payment_terms_days)
        assert invoice.gross_total == invoice.totals().gross
    by_year = defaultdict(list)
    for invoice in sorted(invoices, key=lambda i: (i.year, i.sequence)):
        assert invoice.number == Invoice.format_number(invoice.year, invoice.sequence)
        by_year[invoice.year].append(invoice)
    for year, issued in by_year.items():
        assert [i.sequence for i in issued] == list(range(1, len(issued) + 1))
        assert [i.issue_date for i in issued] == sorted(i.issue_date for i in issued)
        assert NumberSequence.get(NumberSequence.name == f"invoice-{year}").last_value == len(issued)
    numbers = sorted({q.number for q in Quote.select()})
    assert numbers == list(range(1, len(numbers) + 1))


def test_seed_fills_the_board_catalog_and_documents(seeded):
    """One seed (~10 s) checked for everything a newcomer sees."""
    _fills_every_board_column()
    _company_catalog_accounts_logins_and_activities()
    _documents_in_every_state_with_gapless_numbers()
    _documents_state_the_dates_of_their_records()


def test_seed_leaves_a_database_with_users_alone(database):
    User.create_user("owner@example.com", "long-enough-password", "Owner", "admin")
    before = row_counts()
    assert seed_demo() is False
    assert row_counts() == before


def test_seed_refuses_a_future_reference_date(database):
    with pytest.raises(ValueError):
        seed_demo(today=today() + datetime.timedelta(days=2))
    assert User.select().count() == 0


def test_seed_is_deterministic_and_runs_once(database, tmp_path):
    day = today()
    assert seed_demo(today=day) is True
    first = canonical_dump()
    original, second_db = db.obj, make_database(f"sqlite:///{tmp_path / 'second.db'}")
    try:
        db.initialize(second_db)
        upgrade()
        with db.connection_context():
            assert seed_demo(today=day) is True
            second = canonical_dump()
    finally:
        db.initialize(original)
        second_db.close_all() if hasattr(second_db, "close_all") else second_db.close()
    assert not db.is_closed()
    for table in first:
        assert first[table] == second[table], table
    before = row_counts()
    assert seed_demo(today=day) is False
    assert row_counts() == before
    assert canonical_dump() == first
