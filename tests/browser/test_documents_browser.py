"""Quote, order and invoice panels in a real browser: related links, the line editor, lifecycle actions."""
import re
from decimal import Decimal

from models import Account, Invoice, Lead, Opportunity, Order, Product, Quote, Settings, User, db
from models.base import today


def _deal(owner, column):
    """A deal taken through the real rules to `column` (propose: a draft quote; close: an active one)."""
    with db.connection_context():
        actor = User.get(User.email == owner.email)
        Settings.update(company_name="Pipeline Test GmbH", address="Teststrasse 1\n10115 Berlin",
                        vat_id="DE123456789").where(Settings.id == Settings.load().id).execute()
        lead = Lead.create_lead(actor, name="Jonas Weber", company="Weber Logistik", email="jonas@weber.example",
                                topic="Fleet tablets", budget_amount="8000", purchase_timeframe="this quarter")
        opportunity = lead.qualify(actor)
        Account.update(street="Hafenstrasse 12", postal_code="20457", city="Hamburg", country="DE").where(
            Account.id == opportunity.account_id).execute()
        product = Product.get_or_none(Product.sku == "TAB-10") or Product.create_product(
            actor, sku="TAB-10", name="Rugged tablet", list_price="640.00", tax_rate="19")
        opportunity.add_line(actor, product=product.id, quantity="10")
        opportunity.move_to(actor, "propose")
        if column == "close":
            opportunity.move_to(actor, "close", activate_quote="1")
        return Opportunity.get_by_id(opportunity.id)


def _gross(page):
    return Decimal(page.locator("#panel .lines tfoot [data-gross]").get_attribute("data-gross"))


def _status(page):
    return page.locator("#panel .panel-head .eyebrow .status").text_content()


def _open_related(page, text):
    page.locator("#panel .related").get_by_role("link", name=text).click()


def test_draft_quote_from_the_opportunity_panel_lines_totals_then_activate(page, user, screenshot):
    deal = _deal(user, "propose")
    with db.connection_context():
        quote = deal.quote_in("draft")
    page.goto(f"{page.base}/board?panel=opportunity:{deal.id}")
    page.locator("#panel .related").get_by_role("link", name=re.compile(r"Quote Q-\d+ rev 1")).click()
    page.locator(f'#panel[data-record="quote:{quote.id}"]').wait_for()
    assert _status(page) == "draft"
    assert _gross(page) == Decimal("7616.00")
    lines = page.locator(f"#lines-quote-{quote.id}")
    lines.locator('input[name="q"]').fill("tablet")
    lines.locator(".product-pick").first.click()
    page.wait_for_function(f"document.querySelector('#lines-quote-{quote.id} tfoot [data-gross]')"
                           ".dataset.gross === '8377.60'")
    free = lines.locator("form.free-line")
    free.locator('input[name="description"]').fill("Setup & <training> day")
    free.locator('input[name="unit_price"]').fill("450")
    free.locator('input[name="tax_rate"]').fill("7")
    free.locator("button[type=submit]").click()
    page.wait_for_function(f"document.querySelector('#lines-quote-{quote.id} tfoot [data-gross]')"
                           ".dataset.gross === '8859.10'")
    summary = page.locator(f"#summary-quote-{quote.id} [data-gross]")
    assert summary.get_attribute("data-gross") == "8859.10"
    assert "Tax 7 %" in lines.locator("tfoot").inner_text()
    assert lines.locator('input[name="description"]').nth(2).input_value() == "Setup & <training> day"
    screenshot(page, "quote-draft-panel")
    page.locator("#panel [data-action=activate] button").click()
    page.wait_for_function("document.querySelector('#panel .eyebrow .status').textContent === 'active'")
    assert page.locator("#panel .line-table.editable").count() == 0
    assert page.locator("#panel form.free-line").count() == 0
    assert page.locator("#panel a.ifield-value").count() == 0
    assert "active and read-only" in page.locator("#panel .lines").inner_text()
    assert [a.get_attribute("data-action") for a in page.locator("#panel .panel-actions [data-action]").all()] == \
        ["win", "revise", "lose"]
    assert "is active (sent)" in page.locator("#toasts").inner_text()
    screenshot(page, "quote-active-panel")
    with db.connection_context():
        fresh = Quote.get_by_id(quote.id)
        assert fresh.status == "active" and fresh.gross_total == Decimal("8859.10")
    assert page.console_errors == []


def test_follow_the_deal_from_opportunity_to_paid_invoice(page, user, screenshot):
    deal = _deal(user, "close")
    page.goto(f"{page.base}/opportunities/{deal.id}")
    _open_related(page, re.compile(r"Quote Q-\d+ rev 1"))
    page.locator("#panel .panel-actions").get_by_role("link", name="Win…").click()
    form = page.locator("#panel form.action-form[data-action=win]")
    form.wait_for()
    assert form.locator('input[name="actual_revenue"]').input_value() == "6400.00"
    assert form.locator('input[name="actual_close_date"]').input_value() == today().isoformat()
    screenshot(page, "quote-win-form")
    form.locator('input[name="actual_revenue"]').fill("abc")
    form.get_by_role("button", name="Close the deal as won").click()
    page.locator("#panel form.action-form[data-action=win] .has-error .field-error").wait_for()
    assert page.locator("#panel form.action-form[data-action=win] input[name=actual_revenue]").input_value() == "abc"
    screenshot(page, "quote-win-error")
    page.locator("#panel form.action-form[data-action=win] input[name=actual_revenue]").fill("6250")
    page.locator("#panel form.action-form").get_by_role("button", name="Close the deal as won").click()
    page.wait_for_function("document.querySelector('#panel .eyebrow .status').textContent === 'won'")
    with db.connection_context():
        order = Order.get(Order.opportunity == deal.id)
    _open_related(page, f"Order {order.display_number}")
    page.locator(f'#panel[data-record="order:{order.id}"]').wait_for()
    assert page.locator("#panel .line-table.editable").count() == 0
    screenshot(page, "order-open-panel")
    page.locator("#panel [data-action=fulfil] button").click()
    page.wait_for_function("document.querySelector('#panel .eyebrow .status').textContent === 'fulfilled'")
    page.locator("#panel [data-action=invoice] button").click()
    page.locator("#panel[data-record^='invoice:']").wait_for()
    assert _status(page) == "draft"
    screenshot(page, "invoice-draft-panel")
    page.locator("#panel [data-action=issue] button").click()
    page.wait_for_function("document.querySelector('#panel .eyebrow .status').textContent === 'issued'")
    assert re.fullmatch(r"INV-\d{4}-\d{5}", page.locator("#panel h2").inner_text())
    assert page.locator("#panel .eyebrow .badge").text_content() == "unpaid"
    paid_on = page.locator("#panel form[data-action=paid] input[name=paid_on]")
    assert paid_on.input_value() == today().isoformat()
    screenshot(page, "invoice-issued-panel")
    page.locator("#panel form[data-action=paid] button").click()
    page.wait_for_function("document.querySelector('#panel .eyebrow .status').textContent === 'paid'")
    # a paid invoice's lifecycle is over: emailing it again is all that is left (off without a mail server)
    assert page.locator("#panel .panel-actions button, #panel .panel-actions a").all_inner_texts() == [
        "Email the invoice"]
    assert page.locator("#panel .panel-actions button").is_disabled()
    screenshot(page, "invoice-paid-panel")
    with db.connection_context():
        invoice = Invoice.get(Invoice.order == order.id)
        assert (invoice.status, invoice.paid_on) == ("paid", today())
        assert Opportunity.get_by_id(deal.id).column == "invoiced"
    _open_related(page, "Fleet tablets")
    page.locator('#panel[aria-label="Opportunity Fleet tablets"]').wait_for()
    assert page.locator("#panel .related").get_by_role("link", name=f"Invoice {invoice.number}").count() == 1
    assert page.console_errors == []


def test_issue_and_mark_paid_on_the_board_moves_the_card(page, user, screenshot):
    deal = _deal(user, "close")
    with db.connection_context():
        actor = User.get(User.email == user.email)
        opportunity = Opportunity.get_by_id(deal.id)
        opportunity.move_to(actor, "fulfill", actual_revenue="6400.00", actual_close_date=today().isoformat())
        order = Opportunity.get_by_id(deal.id).order
        order.fulfil(actor)
        invoice = Invoice.create_from_order(actor, Order.get_by_id(order.id))
    page.goto(f"{page.base}/board?panel=opportunity:{deal.id}")
    _open_related(page, f"Invoice {invoice.display_number}")
    page.locator(f'#panel[data-record="invoice:{invoice.id}"]').wait_for()
    page.locator("#panel [data-action=issue] button").click()
    page.locator(f'ol.cards[data-stage="invoiced"] [data-record="opportunity:{deal.id}"]').wait_for()
    assert page.locator(f'ol.cards[data-stage="fulfill"] [data-record="opportunity:{deal.id}"]').count() == 0
    assert page.locator("#head-invoiced [data-count]").get_attribute("data-count") == "1"
    assert page.locator("#head-fulfill [data-count]").get_attribute("data-count") == "0"
    card = page.locator(f'[data-record="opportunity:{deal.id}"]')
    assert "unpaid" in card.inner_text()
    page.locator("#panel form[data-action=paid] button").click()
    page.locator(f'[data-record="opportunity:{deal.id}"] .badge-paid').wait_for()
    screenshot(page, "board-invoice-panel-paid")
    page.locator("#panel .panel-close").click()
    page.wait_for_function("document.querySelector('#panel').hidden === true")
    assert page.console_errors == []


def test_lists_filter_and_look(page, user, screenshot):
    deal = _deal(user, "close")
    with db.connection_context():
        actor = User.get(User.email == user.email)
        Opportunity.get_by_id(deal.id).move_to(actor, "fulfill", actual_revenue="6400.00",
                                               actual_close_date=today().isoformat())
        order = Opportunity.get_by_id(deal.id).order
        order.fulfil(actor)
        invoice = Invoice.create_from_order(actor, Order.get_by_id(order.id))
        invoice.issue(actor)
        Invoice.update(due_date=today().replace(year=today().year - 1)).where(Invoice.id == invoice.id).execute()
    page.goto(f"{page.base}/invoices")
    page.locator("select[name=status]").select_option("overdue")
    page.wait_for_url(re.compile(r"status=overdue"))
    page.locator(f'#list [data-record="invoice:{invoice.id}"] .badge-overdue').wait_for()
    screenshot(page, "invoice-list-overdue")
    page.locator("select[name=status]").select_option("paid")
    page.locator("#list .muted", has_text="No invoices match.").wait_for()
    page.goto(f"{page.base}/quotes")
    assert page.locator("#list tbody tr").count() == 1
    screenshot(page, "quote-list")
    page.goto(f"{page.base}/orders")
    page.locator(f'#list [data-record="order:{order.id}"]').get_by_role("link", name=order.display_number).click()
    page.wait_for_url(re.compile(rf"/orders/{order.id}$"))
    assert page.locator("#panel h2").inner_text() == order.display_number
    screenshot(page, "order-page")
    assert page.console_errors == []




def test_document_panels_have_no_serious_accessibility_violations(page, user):
    from axe_playwright_python.sync_playwright import Axe
    deal = _deal(user, "close")
    with db.connection_context():
        quote = deal.quote_in("active")
    serious = []
    for path in (f"/quotes/{quote.id}?action=win", f"/board?panel=opportunity:{deal.id}", "/quotes", "/invoices"):
        page.goto(f"{page.base}{path}")
        if "board" in path:
            _open_related(page, re.compile(r"Quote Q-\d+ rev 1"))
            page.locator(f'#panel[data-record="quote:{quote.id}"]').wait_for()
        results = Axe().run(page, options={"resultTypes": ["violations"]})
        serious += [(path, v["id"], v["help"], [n["target"] for n in v["nodes"][:3]])
                    for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], "\n".join(map(str, serious))


def test_email_a_sent_quote_from_its_panel(page, user, screenshot):
    from axe_playwright_python.sync_playwright import Axe
    from models import mail
    from smtp_sink import SmtpSink
    deal = _deal(user, "close")
    with db.connection_context():
        quote = deal.quote_in("active")
        Settings.update(email="sales@pipeline-test.example").where(Settings.id == Settings.load().id).execute()
    with SmtpSink() as sink:
        mail.configure(sink.url)
        try:
            page.goto(f"{page.base}/board?panel=opportunity:{deal.id}")
            _open_related(page, re.compile(r"Quote Q-\d+ rev 1"))
            page.locator(f'#panel[data-record="quote:{quote.id}"]').wait_for()
            page.locator("#panel a[data-action=email]").click()
            form = page.locator("#panel form[data-action=email]")
            form.wait_for()
            assert form.locator('input[name="to"]').input_value() == "jonas@weber.example"
            assert form.locator('textarea[name="message"]').input_value().startswith("Dear Jonas Weber,")
            results = Axe().run(page, options={"resultTypes": ["violations"]})
            serious = [(v["id"], v["help"]) for v in results.response["violations"]
                       if v["impact"] in ("serious", "critical")]
            assert serious == []
            form.locator('input[name="cc"]').fill("buyer@weber.example")
            screenshot(page, "quote-email-form")
            sink.delay = 1.0  # a slow mail server: the button cannot send it twice meanwhile
            send = form.get_by_role("button", name="Send the email")
            send.click()
            assert send.is_disabled()
            page.get_by_text(re.compile(r"was emailed to jonas@weber\.example, buyer@weber\.example")).wait_for()
            page.locator("#panel .timeline").get_by_text("emailed the document").wait_for()
            assert [m[1] for m in sink.messages] == [["jonas@weber.example", "buyer@weber.example"],
                                                      [user.email]]  # the seller's blind copy, ticked by default
            assert page.console_errors == []
        finally:
            mail.configure("")


def test_a_reminder_run_from_the_overdue_list(page, user):
    import datetime
    from models import mail
    from smtp_sink import SmtpSink
    deal = _deal(user, "close")
    with db.connection_context():
        actor = User.get(User.email == user.email)
        Settings.update(email="sales@pipeline-test.example").where(Settings.id == Settings.load().id).execute()
        opportunity = Opportunity.get_by_id(deal.id)
        opportunity.move_to(actor, "fulfill", actual_revenue="6400", actual_close_date=today().isoformat())
        order = Opportunity.get_by_id(deal.id).order
        order.fulfil(actor)
        invoice = Invoice.create_from_order(actor, Order.get_by_id(order.id))
        invoice.issue(actor, issue_date=(today() - datetime.timedelta(days=40)).isoformat())
        number = Invoice.get_by_id(invoice.id).number
    with SmtpSink() as sink:
        mail.configure(sink.url)
        try:
            page.goto(f"{page.base}/invoices?status=overdue")
            page.get_by_role("button", name="Send payment reminders").click()
            results = page.locator("#list .reminder-results")
            results.wait_for()
            assert "1 of 1 reminder sent." in results.inner_text()
            assert results.locator("[data-outcome=sent]").inner_text().startswith(f"{number}: sent (jonas@weber.example)")
            assert page.locator(f'#list tr[data-record="invoice:{invoice.id}"] [data-reminders="1"]').count() == 1
            assert len(sink.messages) == 1 and page.console_errors == []
        finally:
            mail.configure("")
