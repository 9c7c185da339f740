"""CSV export of every list: the whole filtered list in its sort order, only what the user may see,
spreadsheet-safe cells, and a line in the security log."""
import csv
import io
from decimal import Decimal

import pytest

from builders import make_draft_invoice, make_lead
from clients import PASSWORD, HtmxClient
from models import Lead, Product, SecurityEvent, User, db



LISTS = ["leads", "opportunities", "quotes", "orders", "invoices", "accounts", "contacts", "products"]


def _rows(resp):
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = resp.get_data(as_text=True)
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_every_list_exports_what_its_page_lists(logged_in, user):
    with db.connection_context():
        actor = User.get_by_id(user.id)
        make_draft_invoice(actor, company="Export Corp", name="Erik Export")
        Product.create_product(actor, sku="EXP-1", name="Export widget", list_price="19.90")
    for name in LISTS:
        resp = logged_in.get(f"/{name}/export.csv?status=all")
        rows = _rows(resp)
        assert resp.headers["Content-Disposition"].startswith(f'attachment; filename="{name}-')
        assert len(rows) >= 2, name
        assert len({len(r) for r in rows}) == 1, name  # every row has the header's columns
        page = logged_in.get(f"/{name}?status=all").get_data(as_text=True)
        assert 'class="btn btn-sm export-link"' in page and f"/{name}/export.csv" in page, name
    invoices = _rows(logged_in.get("/invoices/export.csv"))
    header = invoices[0]
    assert header[:3] == ["Number", "Status", "Payment"]
    assert invoices[1][header.index("Customer")] == "Export Corp"
    assert Decimal(invoices[1][header.index("Gross")]) > 0


def test_the_whole_filtered_list_in_its_sort_order_not_one_page(logged_in, user):
    with db.connection_context():
        actor = User.get_by_id(user.id)
        for i in range(57):
            make_lead(actor, name=f"Bulk {i:02d}", company=f"Bulk {i:02d} GmbH", budget_amount=f"{1000 + i}.50")
        make_lead(actor, name="Other person", company="Elsewhere AG")
    rows = _rows(logged_in.get("/leads/export.csv?q=bulk&sort=-budget"))
    header, data = rows[0], rows[1:]
    assert len(data) == 57
    budgets = [Decimal(r[header.index("Budget")]) for r in data]
    assert budgets == sorted(budgets, reverse=True) and budgets[0] == Decimal("1056.50")
    assert all(r[header.index("Name")].startswith("Bulk") for r in data)
    assert data[0][header.index("Owner")] == "Sam Seller"


def test_export_shows_only_what_the_user_may_see(app, logged_in, user):
    with db.connection_context():
        other = User.create_user("olga@example.com", PASSWORD, "Olga Other", "seller")
        make_lead(User.get_by_id(user.id), name="Mine Lead")
        make_lead(other, name="Hidden Lead")
    names = [r[1] for r in _rows(logged_in.get("/leads/export.csv"))[1:]]
    assert names == ["Mine Lead"]
    olga = HtmxClient(app.test_client())
    olga.login("olga@example.com")
    assert [r[1] for r in _rows(olga.get("/leads/export.csv"))[1:]] == ["Hidden Lead"]


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\t=1"])
def test_cells_a_spreadsheet_would_run_as_formulas_are_defused(logged_in, user, text):
    with db.connection_context():
        stored = make_lead(User.get_by_id(user.id), name="Formula person", company=text).company
    rows = _rows(logged_in.get("/leads/export.csv"))
    assert stored[0] in "=+-@" and rows[1][rows[0].index("Company")] == "'" + stored


def test_unicode_money_and_dates_read_back_exactly(logged_in, user):
    with db.connection_context():
        lead = make_lead(User.get_by_id(user.id), name="Jürgen Größe", company="Müller & Söhne € GmbH",
                         budget_amount="12345.67")
    rows = _rows(logged_in.get("/leads/export.csv"))
    record = dict(zip(rows[0], rows[1]))
    assert record["Name"] == "Jürgen Größe" and record["Company"] == "Müller & Söhne € GmbH"
    assert record["Budget"] == "12345.67" and record["Private buyer"] == "no"
    with db.connection_context():
        assert record["Created"] == Lead.get_by_id(lead.id).created_at.isoformat(sep=" ", timespec="minutes")


def test_exports_are_in_the_security_log(logged_in, user):
    with db.connection_context():
        make_lead(User.get_by_id(user.id), name="Logged Lead")
    _rows(logged_in.get("/leads/export.csv?q=logged&status=open"))
    with db.connection_context():
        event = SecurityEvent.get(SecurityEvent.kind == "export")
        assert event.actor_id == user.id
        assert event.detail == "leads: 1 rows (q=logged, status=open)"
