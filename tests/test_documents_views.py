"""HTTP tests of the quote, order and invoice panels, their lifecycle actions and their lists."""
import datetime
import re

import pytest

from clients import queries_of
from models import Account, HistoryEvent, Invoice, Opportunity, Order, Quote, Settings, User, db
from models.base import today
from tests.builders import (LINE, SECOND_LINE, days_ago, make_closing, make_draft_invoice, make_proposed,
                            make_won_deal, snapshot, win_inputs)

BOARD = {"HX-Current-URL": "http://localhost/board"}


def _actor(user):
    return User.get_by_id(user.id)


def _fresh(record):
    return type(record).get_by_id(record.id)


def make_quote(actor, state):
    """A quote in `state`, taken there through the real rules."""
    if state == "draft":
        return make_proposed(actor).quote_in("draft")
    opportunity = make_closing(actor)
    quote = opportunity.quote_in("active")
    if state == "won":
        opportunity.move_to(actor, "fulfill", **win_inputs(opportunity))
    elif state == "lost":
        quote.lose(actor)
    elif state == "revised":
        quote.revise(actor)
    return _fresh(quote)


def make_order(actor, state):
    order = make_won_deal(actor).order
    if state in ("fulfilled", "invoiced"):
        order.fulfil(actor)
    if state == "invoiced":
        Invoice.create_from_order(actor, _fresh(order))
    if state == "canceled":
        order.cancel(actor, reason="Customer withdrew")
    return _fresh(order)


def issuable(invoice):
    """The company block and the customer's postal address an issued e-invoice needs."""
    settings = Settings.load()
    Settings.update(company_name="Pipeline Test GmbH", address="Teststrasse 1\n10115 Berlin", vat_id="DE123456789",
                    bank_details="IBAN DE02 1203 0000 0000 2020 51").where(Settings.id == settings.id).execute()
    if invoice.account_id:
        Account.update(street="Hauptstrasse 5", postal_code="80331", city="Munich", country="DE").where(
            Account.id == invoice.account_id).execute()
    return _fresh(invoice)


def draft_invoice(actor, **lead_overrides):
    return issuable(make_draft_invoice(actor, **lead_overrides))


def make_invoice(actor, state):
    invoice = draft_invoice(actor)
    if state in ("issued", "paid"):
        invoice.issue(actor)
    if state == "paid":
        _fresh(invoice).mark_paid(actor)
    if state == "canceled":
        invoice.cancel(actor, reason="Wrong address")
    return _fresh(invoice)


MAKERS = {"quote": make_quote, "order": make_order, "invoice": make_invoice}
PREFIX = {"quote": "quotes", "order": "orders", "invoice": "invoices"}


def _make(user, kind, state):
    with db.connection_context():
        return MAKERS[kind](_actor(user), state)


def _url(record, action=None):
    base = f"/{PREFIX[record.record_type]}/{record.id}"
    return f"{base}/{action}" if action else base


def _actions(html):
    """The lifecycle actions a panel offers (buttons, inline forms and links that open a form)."""
    return list(dict.fromkeys(re.findall(r'data-action="(\w+)"', html)))


def _state(record):
    with db.connection_context():
        return snapshot(record)


# ----- what each state offers ------------------------------------------------------------------------
@pytest.mark.parametrize("kind,state,offered", [
    ("quote", "draft", ["activate", "lose"]),
    ("quote", "active", ["win", "revise", "lose"]),
    ("quote", "won", []),
    ("quote", "lost", []),
    ("quote", "revised", []),
    ("order", "open", ["fulfil", "invoice", "cancel"]),
    ("order", "fulfilled", ["invoice"]),
    ("order", "invoiced", []),
    ("order", "canceled", []),
    ("invoice", "draft", ["issue", "cancel"]),
    ("invoice", "issued", ["paid", "cancel"]),
    ("invoice", "paid", []),
    ("invoice", "canceled", []),
])
def test_panel_offers_only_the_actions_possible_now(logged_in, user, kind, state, offered):
    record = _make(user, kind, state)
    resp = logged_in.hx_get(_url(record))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert _actions(html) == offered
    assert f'id="version-{kind}-{record.id}" name="version" value="{record.version}"' in html
    assert f'<span class="status status-{record.status}">{record.status}</span>' in html


def test_second_draft_cannot_be_activated_while_another_quote_is_active(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        opportunity = make_closing(actor)
        other = Quote.create_from_opportunity(actor, opportunity)
    html = logged_in.hx_get(_url(other)).get_data(as_text=True)
    assert re.search(r'<button class="btn btn-sm" type="button" disabled[^>]*>Activate \(send\)</button>', html)
    assert "is already active for this deal" in html
    before = _state(other)
    resp = logged_in.hx_post(_url(other, "activate"), {"version": str(other.version)})
    assert resp.status_code == 409 and "is already active for this deal" in resp.get_data(as_text=True)
    assert _state(other) == before


# ----- every action allowed or refused, through the views ----------------------------------------------
PAID_BEFORE_ISSUE = (today() - datetime.timedelta(days=3)).isoformat()
ACTIONS = [
    # kind, state, action, form, status, status after (None: nothing may be written)
    ("quote", "draft", "activate", {}, 200, "active"),
    ("quote", "draft", "lose", {}, 200, "lost"),
    ("quote", "draft", "revise", {}, 409, None),
    ("quote", "draft", "win", {"actual_revenue": "100", "actual_close_date": "today"}, 409, None),
    ("quote", "active", "win", {"actual_revenue": "1800.00", "actual_close_date": "today"}, 200, "won"),
    ("quote", "active", "win", {"actual_revenue": "", "actual_close_date": ""}, 422, None),
    ("quote", "active", "revise", {}, 200, "revised"),
    ("quote", "active", "lose", {}, 200, "lost"),
    ("quote", "won", "activate", {}, 409, None),
    ("quote", "won", "revise", {}, 409, None),
    ("quote", "won", "lose", {}, 409, None),
    ("quote", "lost", "activate", {}, 409, None),
    ("quote", "lost", "revise", {}, 409, None),
    ("quote", "lost", "win", {"actual_revenue": "100", "actual_close_date": "today"}, 409, None),
    ("quote", "revised", "activate", {}, 409, None),
    ("quote", "revised", "lose", {}, 409, None),
    ("quote", "revised", "win", {"actual_revenue": "100", "actual_close_date": "today"}, 409, None),
    ("order", "open", "fulfil", {}, 200, "fulfilled"),
    ("order", "open", "cancel", {"reason": "Customer withdrew"}, 200, "canceled"),
    ("order", "open", "cancel", {"reason": "   "}, 422, None),
    ("order", "open", "invoice", {}, 200, "open"),
    ("order", "fulfilled", "cancel", {"reason": "Too late"}, 409, None),
    ("order", "fulfilled", "invoice", {}, 200, "fulfilled"),
    ("order", "invoiced", "invoice", {}, 409, None),
    ("order", "canceled", "fulfil", {}, 409, None),
    ("order", "canceled", "invoice", {}, 409, None),
    ("invoice", "draft", "issue", {}, 200, "issued"),
    ("invoice", "draft", "issue", {"issue_date": "today"}, 200, "issued"),
    ("invoice", "draft", "issue", {"issue_date": "2999-01-01"}, 422, None),
    ("invoice", "draft", "issue", {"issue_date": "31.12.2024"}, 422, None),
    ("invoice", "draft", "paid", {"paid_on": "today"}, 409, None),
    ("invoice", "draft", "cancel", {"reason": "Duplicate"}, 200, "canceled"),
    ("invoice", "draft", "cancel", {"reason": ""}, 422, None),
    ("invoice", "issued", "paid", {"paid_on": "today"}, 200, "paid"),
    ("invoice", "issued", "paid", {"paid_on": ""}, 200, "paid"),
    ("invoice", "issued", "paid", {"paid_on": "2999-01-01"}, 422, None),
    ("invoice", "issued", "paid", {"paid_on": "31.12.2024"}, 422, None),
    ("invoice", "issued", "paid", {"paid_on": PAID_BEFORE_ISSUE}, 422, None),
    ("invoice", "issued", "cancel", {"reason": "Wrong customer"}, 200, "canceled"),
    ("invoice", "paid", "cancel", {"reason": "Refund"}, 409, None),
    ("invoice", "canceled", "issue", {}, 409, None),
    ("invoice", "canceled", "paid", {"paid_on": "today"}, 409, None),
]


@pytest.mark.parametrize("kind,state,action,form,status,after", ACTIONS)
def test_action_through_the_view(logged_in, user, kind, state, action, form, status, after):
    record = _make(user, kind, state)
    data = {k: (today().isoformat() if v == "today" else v) for k, v in form.items()}
    data["version"] = str(record.version)
    before = _state(record)
    with db.connection_context():
        events_before = HistoryEvent.select().count()
    resp = logged_in.hx_post(_url(record, action), data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == status, html[:2000]
    assert 'id="panel"' in html and "<html" not in html
    if after is None:
        assert _state(record) == before, "a refused action wrote something"
        if status == 422:
            assert 'role="alert"' in html and f'data-action="{action}"' in html
        else:
            assert 'class="notice notice-danger" role="alert"' in html
        return
    with db.connection_context():
        assert _fresh(record).status == after
        assert HistoryEvent.select().count() > events_before
    assert 'class="toast toast-info"' in html


@pytest.mark.parametrize("kind,state,action,form", [
    ("quote", "active", "activate", {}),
    ("quote", "lost", "lose", {}),
    ("order", "fulfilled", "fulfil", {}),
    ("order", "canceled", "cancel", {"reason": "Again"}),
    ("invoice", "issued", "issue", {}),
    ("invoice", "paid", "paid", {"paid_on": ""}),
    ("invoice", "canceled", "cancel", {"reason": "Again"}),
])
def test_repeating_a_done_action_is_200_and_writes_nothing(logged_in, user, kind, state, action, form):
    record = _make(user, kind, state)
    before = _state(record)
    resp = logged_in.hx_post(_url(record, action), dict(form, version=str(record.version)))
    assert resp.status_code == 200 and "already" in resp.get_data(as_text=True)
    assert _state(record) == before


@pytest.mark.parametrize("kind,state,action,form", [
    ("quote", "draft", "activate", {}),
    ("quote", "active", "win", {"actual_revenue": "1800", "actual_close_date": "today"}),
    ("quote", "active", "revise", {}),
    ("quote", "active", "lose", {}),
    ("order", "open", "fulfil", {}),
    ("order", "open", "cancel", {"reason": "Too late"}),
    ("order", "open", "invoice", {}),
    ("invoice", "draft", "issue", {}),
    ("invoice", "issued", "paid", {"paid_on": "today"}),
    ("invoice", "issued", "cancel", {"reason": "Wrong"}),
])
def test_stale_version_is_409_with_the_fresh_panel(logged_in, user, kind, state, action, form):
    record = _make(user, kind, state)
    with db.connection_context():
        type(record).update(version=type(record).version + 1).where(type(record).id == record.id).execute()
        HistoryEvent.write(_actor(user), record, "update", {"notes": ("", "x")})
    before = _state(record)
    data = {k: (today().isoformat() if v == "today" else v) for k, v in form.items()}
    resp = logged_in.hx_post(_url(record, action), dict(data, version=str(record.version)))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "changed by Sam Seller since you loaded it" in html
    assert f'name="version" value="{record.version + 1}"' in html
    assert _state(record) == before


# ----- messages at the fields of the action form ------------------------------------------------------
def test_win_with_bad_amount_shows_the_message_at_the_field_and_keeps_the_input(logged_in, user):
    quote = _make(user, "quote", "active")
    resp = logged_in.hx_post(_url(quote, "win"), {"version": str(quote.version), "actual_revenue": "12,3,4<b>",
                                                  "actual_close_date": "2999-01-01"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    prefix = f"actions-quote-{quote.id}-win"
    assert re.search(rf'id="{prefix}-actual_revenue-error">[^<]+<', html)
    assert re.search(rf'id="{prefix}-actual_close_date-error">Enter a date between', html)
    assert 'value="12,3,4&lt;b&gt;"' in html
    assert f'aria-describedby="{prefix}-actual_revenue-error"' in html
    with db.connection_context():
        assert _fresh(quote).status == "active" and Order.select().count() == 0


def test_win_form_is_prefilled_with_the_win_defaults(logged_in, user):
    quote = _make(user, "quote", "active")
    html = logged_in.hx_get(_url(quote) + "?action=win").get_data(as_text=True)
    assert 'name="actual_revenue" value="1800.00"' in html
    assert f'name="actual_close_date" type="date" value="{today().isoformat()}"' in html
    assert f'action="/quotes/{quote.id}/win"' in html


def test_win_closes_the_deal_creates_the_order_and_links_it(logged_in, user):
    quote = _make(user, "quote", "active")
    resp = logged_in.hx_post(_url(quote, "win"), {"version": str(quote.version), "actual_revenue": "1750",
                                                  "actual_close_date": today().isoformat()})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    with db.connection_context():
        order = Order.get(Order.quote == quote.id)
        deal = Opportunity.get_by_id(quote.opportunity_id)
        assert (deal.status, deal.column, str(deal.actual_revenue)) == ("won", "fulfill", "1750.00")
    assert f'href="/orders/{order.id}"' in html and f"Deal won: order {order.display_number} created." in html


def test_cancel_without_reason_says_so_at_the_reason(logged_in, user):
    order = _make(user, "order", "open")
    resp = logged_in.hx_post(_url(order, "cancel"), {"version": str(order.version), "reason": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f'id="actions-order-{order.id}-cancel-reason-error">Enter a reason.</p>' in html


def test_activate_with_an_expired_validity_asks_for_the_date_in_the_form(logged_in, user):
    quote = _make(user, "quote", "draft")
    with db.connection_context():
        Quote.update(valid_until=days_ago(2)).where(Quote.id == quote.id).execute()
    before = _state(quote)
    resp = logged_in.hx_post(_url(quote, "activate"), {"version": str(quote.version)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f'id="actions-quote-{quote.id}-activate-valid_until-error">Set a valid-until date' in html
    assert _state(quote) == before
    future = (today() + datetime.timedelta(days=14)).isoformat()
    again = logged_in.hx_post(_url(quote, "activate"), {"version": str(quote.version), "valid_until": future})
    assert again.status_code == 200
    with db.connection_context():
        fresh = _fresh(quote)
        assert fresh.status == "active" and fresh.valid_until.isoformat() == future


def test_activate_without_lines_lists_what_is_missing(logged_in, user):
    quote = _make(user, "quote", "draft")
    with db.connection_context():
        for line in quote.line_rows():
            _fresh(quote).remove_line(_actor(user), line.id)
        quote = _fresh(quote)
    resp = logged_in.hx_post(_url(quote, "activate"), {"version": str(quote.version)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert '<li data-field="line"><strong>Line:</strong> Add at least one line.</li>' in html


def test_paid_before_issue_date_is_refused_at_the_date(logged_in, user):
    invoice = _make(user, "invoice", "issued")
    resp = logged_in.hx_post(_url(invoice, "paid"), {"version": str(invoice.version), "paid_on": PAID_BEFORE_ISSUE})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert f'id="actions-invoice-{invoice.id}-paid-paid_on-error" role="alert">Paid on: Enter a date from' in html


def test_issue_takes_the_invoice_date_from_the_panel_and_keeps_the_years_numbers_in_date_order(logged_in, user):
    first, second = _make(user, "invoice", "draft"), _make(user, "invoice", "draft")
    html = logged_in.hx_get(_url(first)).get_data(as_text=True)
    field = re.search(r'<input id="actions-invoice-\d+-issue-issue_date" name="issue_date" type="date" value="([^"]+)"', html)
    assert field and field.group(1) == today().isoformat()
    dated = datetime.date(today().year - 1, 12, 20)  # in the past on any day the test runs
    resp = logged_in.hx_post(_url(first, "issue"), {"version": str(first.version), "issue_date": dated.isoformat()})
    assert resp.status_code == 200
    with db.connection_context():
        issued = _fresh(first)
    assert (issued.status, issued.issue_date) == ("issued", dated)
    earlier = (dated - datetime.timedelta(days=1)).isoformat()
    before = _state(second)
    resp = logged_in.hx_post(_url(second, "issue"), {"version": str(second.version), "issue_date": earlier})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert (f'id="actions-invoice-{second.id}-issue-issue_date-error" role="alert">Invoice date: Invoice '
            f'{issued.number} is dated {dated.isoformat()}: date this one on that day or later') in html
    assert f'name="issue_date" type="date" value="{earlier}"' in html  # what was typed stays in the field
    assert _state(second) == before
    resp = logged_in.hx_post(_url(second, "issue"), {"version": str(second.version), "issue_date": dated.isoformat()})
    assert resp.status_code == 200
    with db.connection_context():
        assert _fresh(second).number > issued.number


def test_issue_refused_for_missing_e_invoice_data_lists_every_field(logged_in, user):
    invoice = _make(user, "invoice", "draft")
    with db.connection_context():
        Settings.update(vat_id="").execute()
        Account.update(street="", city="").where(Account.id == invoice.account_id).execute()
    before = _state(invoice)
    resp = logged_in.hx_post(_url(invoice, "issue"), {"version": str(invoice.version),
                                                      "issue_date": today().isoformat()})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and _state(invoice) == before
    assert "The invoice is not ready to issue" in html
    for field, label in (("settings.vat_id", "Company VAT id"), ("account.street", "Customer street"),
                         ("account.city", "Customer city")):
        assert f'<li data-field="{field}"><strong>{label}:</strong> Enter ' in html
    assert f'name="issue_date" type="date" value="{today().isoformat()}"' in html  # the date stays


def test_an_invoice_dated_tomorrow_moves_the_default_date_of_the_next(logged_in, user):
    first, second = _make(user, "invoice", "draft"), _make(user, "invoice", "draft")
    tomorrow = today() + datetime.timedelta(days=1)
    assert logged_in.hx_post(_url(first, "issue"), {"version": str(first.version),
                                                    "issue_date": tomorrow.isoformat()}).status_code == 200
    html = logged_in.hx_get(_url(second)).get_data(as_text=True)
    assert f'name="issue_date" type="date" value="{tomorrow.isoformat()}"' in html
    with db.connection_context():  # issued without a date (the board's move, the API): dated after the first
        assert _fresh(second).issue(_actor(user)) is True
        assert _fresh(second).issue_date == (tomorrow if tomorrow.year == today().year else today())


def test_locked_lines_say_goods_or_service_where_the_vat_rate_is_zero(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        invoice = issuable(make_draft_invoice(actor, lines=[
            LINE, {"description": "Label printer", "unit_price": "300", "tax_rate": "0", "supply": "goods"},
            {"description": "Exam fee", "unit_price": "250", "tax_rate": "0", "tax_exemption": "§ 4 Nr. 21 UStG"}]))
        invoice.issue(actor)
    html = logged_in.hx_get(_url(invoice)).get_data(as_text=True)
    assert "Label printer<br><span class=\"muted small\">Goods</span>" in html
    assert "Exam fee<br><span class=\"muted small\">Service · VAT exempt: § 4 Nr. 21 UStG</span>" in html
    assert "Consulting day</td>" in html  # a taxed line needs neither


# ----- what follows an action ----------------------------------------------------------------------
def test_revise_shows_the_new_draft_with_its_revisions_related(logged_in, user):
    quote = _make(user, "quote", "active")
    resp = logged_in.hx_post(_url(quote, "revise"), {"version": str(quote.version)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    with db.connection_context():
        draft = Quote.get((Quote.number == quote.number) & (Quote.revision == 2))
    assert f'data-record="quote:{draft.id}"' in html and "rev 2" in html
    assert f'href="/quotes/{quote.id}"' in html
    old = logged_in.hx_get(_url(quote)).get_data(as_text=True)
    assert "Superseded by" in old and f'href="/quotes/{draft.id}"' in old


def test_create_invoice_shows_the_draft_invoice(logged_in, user):
    order = _make(user, "order", "fulfilled")
    with db.connection_context():
        issuable(order)
    resp = logged_in.hx_post(_url(order, "invoice"), {"version": str(order.version)})
    html = resp.get_data(as_text=True)
    with db.connection_context():
        invoice = Invoice.get(Invoice.order == order.id)
    assert resp.status_code == 200 and f'data-record="invoice:{invoice.id}"' in html
    assert _actions(html) == ["issue", "cancel"]
    twice = logged_in.hx_post(_url(order, "invoice"), {"version": str(order.version)})
    assert twice.status_code == 409 and "already has invoice" in twice.get_data(as_text=True)
    with db.connection_context():
        assert Invoice.select().count() == 1


def test_issue_from_the_board_moves_the_card_to_invoiced(logged_in, user):
    invoice = _make(user, "invoice", "draft")
    resp = logged_in.hx_post(_url(invoice, "issue"), {"version": str(invoice.version)}, headers=BOARD)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    card = f"card-opportunity-{invoice.opportunity_id}"
    assert f'<li id="{card}" hx-swap-oob="delete">' in html
    assert 'id="cards-invoiced" hx-swap-oob="afterbegin"' in html and f'id="{card}"' in html
    assert 'id="head-fulfill"' in html and 'id="head-invoiced"' in html
    assert 'hx-get="/board/panel/close"' in html
    elsewhere = logged_in.hx_post(_url(invoice, "paid"), {"version": str(invoice.version + 1)},
                                  headers={"HX-Current-URL": f"http://localhost/invoices/{invoice.id}"})
    assert elsewhere.status_code == 200 and "card-opportunity" not in elsewhere.get_data(as_text=True)


def test_paid_from_the_board_refreshes_the_card_in_place(logged_in, user):
    invoice = _make(user, "invoice", "issued")
    resp = logged_in.hx_post(_url(invoice, "paid"), {"version": str(invoice.version), "paid_on": ""}, headers=BOARD)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert re.search(rf'id="card-opportunity-{invoice.opportunity_id}"[^>]*hx-swap-oob="true"', html)
    assert "badge-paid" in html


def test_actions_without_javascript_redirect_and_flash(logged_in, user):
    invoice = _make(user, "invoice", "draft")
    resp = logged_in.form_post(_url(invoice, "issue"), {"version": str(invoice.version)})
    assert resp.status_code == 303 and resp.location.endswith(_url(invoice))
    page = logged_in.get(resp.location).get_data(as_text=True)
    assert "<html" in page and "is issued." in page
    refused = logged_in.form_post(_url(invoice, "cancel"), {"version": str(invoice.version + 1), "reason": ""})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "<html" in html
    assert f'id="actions-invoice-{invoice.id}-cancel-reason-error">Enter a reason.</p>' in html
    with db.connection_context():
        assert _fresh(invoice).status == "issued"


def test_action_forms_work_without_javascript(logged_in, user):
    quote = _make(user, "quote", "active")
    page = logged_in.get(_url(quote) + "?action=win").get_data(as_text=True)
    form = re.search(r'<form class="notice dialog-form action-form"[^>]*method="post" action="([^"]+)"', page)
    assert form and form.group(1) == f"/quotes/{quote.id}/win"
    assert 'name="csrf_token"' in page
    resp = logged_in.form_post(form.group(1), {"version": str(quote.version), "actual_revenue": "1800.00",
                                               "actual_close_date": today().isoformat()})
    assert resp.status_code == 303
    with db.connection_context():
        assert _fresh(quote).status == "won"


def test_actions_need_the_csrf_token(logged_in, user):
    invoice = _make(user, "invoice", "draft")
    resp = logged_in.client.post(_url(invoice, "issue"), data={"version": str(invoice.version)})
    assert resp.status_code == 400
    with db.connection_context():
        assert _fresh(invoice).status == "draft"


# ----- draft editing inside the panels ---------------------------------------------------------------
def test_draft_quote_fields_and_lines_are_editable_and_refresh_totals_and_actions(logged_in, user):
    quote = _make(user, "quote", "draft")
    html = logged_in.hx_get(_url(quote)).get_data(as_text=True)
    assert f'hx-get="/quotes/{quote.id}/fields/valid_until/edit"' in html
    assert 'class="line-table editable"' in html and "products/search?target=quote" in html
    resp = logged_in.hx_post(f"/quotes/{quote.id}/lines", dict(SECOND_LINE, version=str(quote.version)))
    body = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert f'id="summary-quote-{quote.id}" hx-swap-oob="true"' in body
    assert f'id="actions-quote-{quote.id}" hx-swap-oob="true"' in body
    assert f'id="related-quote-{quote.id}" hx-swap-oob="true"' in body
    assert 'data-gross="2270.56"' in body and "€\u00a02,270.56" in body.split(f'id="related-quote-{quote.id}"')[1]
    assert f'name="version" value="{quote.version + 1}"' in body
    saved = logged_in.hx_post(f"/quotes/{quote.id}/fields/notes", {"notes": "Delivery in May",
                                                                   "version": str(quote.version + 1)})
    assert saved.status_code == 200 and "Delivery in May" in saved.get_data(as_text=True)
    assert f'id="actions-quote-{quote.id}" hx-swap-oob="true"' in saved.get_data(as_text=True)


def test_a_draft_invoice_takes_its_service_period_in_the_panel(logged_in, user):
    invoice = _make(user, "invoice", "draft")
    html = logged_in.hx_get(_url(invoice)).get_data(as_text=True)
    assert f'hx-get="/invoices/{invoice.id}/fields/period_start/edit"' in html and "Service period to" in html
    start = logged_in.hx_post(f"/invoices/{invoice.id}/fields/period_start",
                              {"period_start": "2026-12-01", "version": str(invoice.version)})
    assert start.status_code == 200
    refused = logged_in.hx_post(f"/invoices/{invoice.id}/fields/period_end",
                                {"period_end": "2026-11-30", "version": str(invoice.version + 1)})
    assert refused.status_code == 422 and "cannot come before its start" in refused.get_data(as_text=True)
    end = logged_in.hx_post(f"/invoices/{invoice.id}/fields/period_end",
                            {"period_end": "2027-11-30", "version": str(invoice.version + 1)})
    assert end.status_code == 200
    with db.connection_context():
        stored = _fresh(invoice)
    assert (stored.period_start, stored.period_end) == (datetime.date(2026, 12, 1), datetime.date(2027, 11, 30))


def test_active_quote_is_read_only(logged_in, user):
    quote = _make(user, "quote", "active")
    html = logged_in.hx_get(_url(quote)).get_data(as_text=True)
    assert "/fields/valid_until/edit" not in html and 'class="line-table"' in html
    assert "is active and read-only" in html
    before = _state(quote)
    assert logged_in.hx_get(f"/quotes/{quote.id}/fields/notes/edit").status_code == 409
    assert logged_in.hx_post(f"/quotes/{quote.id}/fields/notes", {"notes": "x"}).status_code == 409
    assert logged_in.hx_post(f"/quotes/{quote.id}/lines", dict(LINE, version=str(quote.version))).status_code == 409
    assert _state(quote) == before


def test_draft_invoice_terms_are_validated_at_the_field(logged_in, user):
    invoice = _make(user, "invoice", "draft")
    bad = logged_in.hx_post(f"/invoices/{invoice.id}/fields/payment_terms_days",
                            {"payment_terms_days": "9999", "version": str(invoice.version)})
    assert bad.status_code == 422 and "Enter a number from 0 to 3650." in bad.get_data(as_text=True)
    good = logged_in.hx_post(f"/invoices/{invoice.id}/fields/payment_terms_days",
                             {"payment_terms_days": "14", "version": str(invoice.version)})
    assert good.status_code == 200
    assert logged_in.hx_post(f"/invoices/{invoice.id}/issue", {"version": str(invoice.version + 1)}).status_code == 200
    with db.connection_context():
        issued = _fresh(invoice)
        assert issued.due_date == issued.issue_date + datetime.timedelta(days=14)
    html = logged_in.hx_get(_url(invoice)).get_data(as_text=True)
    assert "/fields/notes/edit" not in html and 'class="line-table"' in html


def test_order_lines_are_frozen(logged_in, user):
    order = _make(user, "order", "open")
    html = logged_in.hx_get(_url(order)).get_data(as_text=True)
    assert "has frozen prices" in html and 'class="line-table"' in html
    before = _state(order)
    assert logged_in.hx_post(f"/orders/{order.id}/lines", dict(LINE, version=str(order.version))).status_code in (404, 405)
    assert _state(order) == before


# ----- panels, related records, timeline ---------------------------------------------------------------
def test_panels_as_fragment_and_page_and_404(logged_in, user):
    invoice = _make(user, "invoice", "issued")
    with db.connection_context():
        order = _fresh(invoice).order
        quote = order.quote
    for record in (quote, order, invoice):
        frag = logged_in.hx_get(_url(record))
        html = frag.get_data(as_text=True)
        assert frag.status_code == 200 and "HX-Request" in frag.headers["Vary"]
        assert html.startswith('<aside id="panel" class="panel"') and "<html" not in html
        page = logged_in.get(_url(record))
        assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
        assert 'id="panel"' in page.get_data(as_text=True)
        kind = record.record_type
        assert logged_in.get(f"/{PREFIX[kind]}/999999").status_code == 404
        assert logged_in.hx_get(f"/{PREFIX[kind]}/999999").status_code == 404
    assert logged_in.hx_post("/quotes/999999/activate", {"version": "1"}).status_code == 404
    assert logged_in.hx_post("/orders/999999/fulfil", {"version": "1"}).status_code == 404
    assert logged_in.hx_post("/invoices/999999/issue", {"version": "1"}).status_code == 404


def test_related_records_link_the_whole_deal_and_the_timeline_shows_their_events(logged_in, user):
    invoice = _make(user, "invoice", "issued")
    with db.connection_context():
        invoice = _fresh(invoice)
        order, deal = invoice.order, invoice.opportunity
        quote = order.quote
    html = logged_in.hx_get(_url(order)).get_data(as_text=True)
    for href in (f"/opportunities/{deal.id}", f"/quotes/{quote.id}", f"/invoices/{invoice.id}"):
        assert f'href="{href}" hx-get="{href}" hx-target="#panel"' in html
    assert f'<strong aria-current="true">Order {order.display_number}</strong>' in html
    assert "issued the invoice" in html and "fulfilled the order" in html and "sent (activated) the quote" in html
    assert "€" in html and "Tax 19 %" in html
    invoice_panel = logged_in.hx_get(_url(invoice)).get_data(as_text=True)
    assert f'href="/invoices/{invoice.id}.pdf" download>{invoice.number}.pdf</a>' in invoice_panel
    assert f'href="/invoices/{invoice.id}.pdf?view=1" target="_blank" rel="noopener"' in invoice_panel
    assert f'href="/quotes/{quote.id}.pdf" download>' in logged_in.hx_get(_url(quote)).get_data(as_text=True)
    deal_panel = logged_in.hx_get(f"/opportunities/{deal.id}").get_data(as_text=True)
    assert f'href="/quotes/{quote.id}"' in deal_panel and f'href="/invoices/{invoice.id}"' in deal_panel


def test_user_text_is_escaped(logged_in, user):
    evil = '<script>alert(1)</script>'
    with db.connection_context():
        actor = _actor(user)
        opportunity = make_proposed(actor, company=f"{evil} GmbH", topic='<img src=x onerror=alert(1)>')
        quote = opportunity.quote_in("draft")
        quote.update_fields(actor, notes='<img src=x onerror=alert(2)>')
        quote.add_line(actor, description=evil, unit_price="10")
    paths = [_url(quote), "/quotes", "/quotes?q=script"]
    for path in paths:
        html = logged_in.get(path).get_data(as_text=True)
        assert evil not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;" in html, path


# ----- lists -------------------------------------------------------------------------------------------
def _rows(html, kind):
    return [int(i) for i in re.findall(rf'data-record="{kind}:(\d+)"', html)]


def test_quote_list_filters_by_status_and_text(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        draft = make_proposed(actor, company="Nordwind GmbH").quote_in("draft")
        active = make_closing(actor, company="Suedwind AG").quote_in("active")
    html = logged_in.get("/quotes").get_data(as_text=True)
    assert sorted(_rows(html, "quote")) == sorted([draft.id, active.id])
    assert "€\u00a02,142.00" in html and '<td class="num">' in html
    assert _rows(logged_in.get("/quotes?status=active").get_data(as_text=True), "quote") == [active.id]
    assert _rows(logged_in.get("/quotes?q=nordwind").get_data(as_text=True), "quote") == [draft.id]
    assert _rows(logged_in.get(f"/quotes?q=Q-{active.number:05d}").get_data(as_text=True), "quote") == [active.id]
    assert _rows(logged_in.get(f"/quotes?q=q{draft.number}").get_data(as_text=True), "quote") == [draft.id]
    assert _rows(logged_in.get("/quotes?status=won").get_data(as_text=True), "quote") == []
    frag = logged_in.hx_get("/quotes?status=draft")
    body = frag.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="list"') and _rows(body, "quote") == [draft.id]
    for odd in ("/quotes?status=nonsense", "/quotes?sort=bogus", "/quotes?page=abc", "/quotes?q=" + "x" * 500):
        assert logged_in.get(odd).status_code == 200


def test_quote_list_sorts_and_pages(logged_in, user, monkeypatch):
    import views.listing
    monkeypatch.setattr(views.listing, "PER_PAGE", 2)
    with db.connection_context():
        actor = _actor(user)
        opportunity = make_proposed(actor)
        ids = [opportunity.quote_in("draft").id] + [Quote.create_from_opportunity(actor, opportunity).id
                                                     for _ in range(3)]
    first = logged_in.get("/quotes?sort=number").get_data(as_text=True)
    second = logged_in.get("/quotes?sort=number&page=2").get_data(as_text=True)
    assert _rows(first, "quote") == ids[:2] and _rows(second, "quote") == ids[2:]
    assert "1–2 of 4" in first and "3–4 of 4" in second
    assert 'rel="next"' in first and 'rel="prev"' in second
    assert _rows(logged_in.get("/quotes?sort=-number").get_data(as_text=True), "quote") == ids[::-1][:2]


def test_order_list_filters_by_status_and_pages(logged_in, user, monkeypatch):
    import views.listing
    monkeypatch.setattr(views.listing, "PER_PAGE", 2)
    with db.connection_context():
        actor = _actor(user)
        orders = [make_won_deal(actor).order for _ in range(3)]
        orders[0].fulfil(actor)
    all_rows = _rows(logged_in.get("/orders").get_data(as_text=True), "order")
    assert all_rows == [orders[2].id, orders[1].id]
    assert _rows(logged_in.get("/orders?page=2").get_data(as_text=True), "order") == [orders[0].id]
    assert _rows(logged_in.get("/orders?status=fulfilled").get_data(as_text=True), "order") == [orders[0].id]
    assert sorted(_rows(logged_in.get("/orders?status=open").get_data(as_text=True), "order")) == \
        sorted([orders[1].id, orders[2].id])
    by_number = logged_in.get(f"/orders?q={orders[1].display_number}").get_data(as_text=True)
    assert _rows(by_number, "order") == [orders[1].id]


def test_invoice_list_filters_overdue_status_text_and_shows_the_payment_badge(logged_in, user, monkeypatch):
    with db.connection_context():
        actor = _actor(user)
        draft = draft_invoice(actor, company="Alpha KG")
        overdue, unpaid, paid = (draft_invoice(actor, company=name) for name in ("Beta SE", "Gamma AG", "Delta"))
        for invoice in (overdue, unpaid, paid):
            invoice.issue(actor)
        _fresh(paid).mark_paid(actor)
        Invoice.update(due_date=days_ago(1)).where(Invoice.id == overdue.id).execute()
        Invoice.update(due_date=today()).where(Invoice.id == unpaid.id).execute()
        overdue = _fresh(overdue)
    html = logged_in.get("/invoices").get_data(as_text=True)
    assert sorted(_rows(html, "invoice")) == sorted([draft.id, overdue.id, unpaid.id, paid.id])
    for state in ("overdue", "unpaid", "paid", "draft"):
        assert f'class="badge badge-{state}" data-state="{state}"' in html
    assert _rows(logged_in.get("/invoices?status=overdue").get_data(as_text=True), "invoice") == [overdue.id]
    assert sorted(_rows(logged_in.get("/invoices?status=issued").get_data(as_text=True), "invoice")) == \
        sorted([overdue.id, unpaid.id])
    assert _rows(logged_in.get("/invoices?status=paid").get_data(as_text=True), "invoice") == [paid.id]
    assert _rows(logged_in.get("/invoices?status=draft").get_data(as_text=True), "invoice") == [draft.id]
    assert _rows(logged_in.get("/invoices?q=gamma").get_data(as_text=True), "invoice") == [unpaid.id]
    by_number = logged_in.get(f"/invoices?q={overdue.number.lower()}").get_data(as_text=True)
    assert _rows(by_number, "invoice") == [overdue.id]
    assert 'option value="overdue" selected' in logged_in.get("/invoices?status=overdue").get_data(as_text=True)
    import views.listing
    monkeypatch.setattr(views.listing, "PER_PAGE", 3)
    by_due = logged_in.get("/invoices?sort=due").get_data(as_text=True)
    assert _rows(by_due, "invoice")[:2] == [overdue.id, unpaid.id] and "1–3 of 4" in by_due
    assert _rows(logged_in.get("/invoices?sort=due&page=2").get_data(as_text=True), "invoice") == [draft.id]


def test_list_queries_do_not_grow_with_rows(app, logged_in, user):
    def queries(path):
        count, answer = queries_of(lambda: logged_in.get(path))
        assert answer.status_code == 200
        return count

    _make(user, "invoice", "issued")
    few = {path: queries(path) for path in ("/quotes", "/orders", "/invoices")}
    for _ in range(3):
        _make(user, "invoice", "draft")
    assert {path: queries(path) for path in few} == few


def test_repeating_win_or_lose_is_a_quiet_no_op(logged_in, user):
    from models import Quote
    with db.connection_context():
        actor = User.get_by_id(user.id)
        won = make_closing(actor)
        quote = won.quote_in("active")
        quote.win(actor, actual_revenue="10", actual_close_date=str(won.win_defaults()["actual_close_date"]))
        assert Quote.get_by_id(quote.id).win(actor, expected_version=quote.version) is False
        lost_deal = make_closing(actor)
        lost = lost_deal.quote_in("active")
        lost.lose(actor)
        assert Quote.get_by_id(lost.id).lose(actor, expected_version=lost.version) is False
