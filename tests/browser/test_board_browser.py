"""The board in a real browser: drag, dialogs, menus, undo, stale moves, load more."""
from decimal import Decimal

from models import Lead, Opportunity, Product, User, db



def _lead(owner, **extra):
    values = {"name": "Dana Fischer", "company": "Nordwind GmbH", "email": "dana@nordwind.example",
              "topic": "Warehouse scanners"}
    values.update(extra)
    with db.connection_context():
        return Lead.create_lead(User.get(User.email == owner.email), **values)


def _card(page, kind, record_id):
    return page.locator(f'[data-record="{kind}:{record_id}"]')


def _column(page, stage):
    return page.locator(f'ol.cards[data-stage="{stage}"]')


def test_drag_lead_to_develop_asks_for_missing_fields_then_qualifies(page, user, screenshot):
    lead = _lead(user)
    page.goto(f"{page.base}/board")
    _card(page, "lead", lead.id).drag_to(_column(page, "develop"))
    dialog = page.locator("dialog.move-dialog")
    dialog.wait_for()
    assert dialog.locator('[data-field="budget_amount"]').count() == 1
    assert dialog.locator('[data-field="purchase_timeframe"]').count() == 1
    assert dialog.locator('[data-field="email"]').count() == 0
    screenshot(page, "board-qualify-dialog")
    dialog.locator('input[name="budget_amount"]').fill("12500")
    dialog.locator('select[name="purchase_timeframe"]').select_option("this quarter")
    dialog.locator("button[type=submit]").click()
    page.locator("dialog.move-dialog").wait_for(state="detached")
    with db.connection_context():
        opportunity = Opportunity.get(Opportunity.lead == lead.id)
        assert opportunity.column == "develop"
        assert opportunity.account.name == "Nordwind GmbH"
        assert opportunity.contact.email == "dana@nordwind.example"
    card = _column(page, "develop").locator(f'[data-record="opportunity:{opportunity.id}"]')
    card.wait_for()
    assert page.locator(f'[data-record="lead:{lead.id}"]').count() == 0
    head = page.locator("#head-develop")
    assert head.locator("[data-count]").get_attribute("data-count") == "1"
    assert Decimal(head.locator("[data-total]").get_attribute("data-total")) == Decimal("12500.00")
    assert page.locator("#head-qualify [data-count]").get_attribute("data-count") == "0"
    assert "Moved to Develop" in page.locator("#toasts").inner_text()
    screenshot(page, "board-after-qualify")
    assert page.console_errors == []


def test_cancelled_dialog_puts_the_card_back_and_changes_nothing(page, user):
    lead = _lead(user)
    page.goto(f"{page.base}/board")
    _card(page, "lead", lead.id).drag_to(_column(page, "develop"))
    page.locator("dialog.move-dialog").wait_for()
    page.locator("dialog.move-dialog").get_by_role("link", name="Cancel").click()
    page.locator("dialog.move-dialog").wait_for(state="detached")
    _column(page, "qualify").locator(f'[data-record="lead:{lead.id}"]').wait_for()
    assert _column(page, "develop").locator(f'[data-record="lead:{lead.id}"]').count() == 0
    with db.connection_context():
        fresh = Lead.get_by_id(lead.id)
        assert fresh.status == "open" and fresh.version == 1
        assert Opportunity.select().count() == 0


def test_keyboard_only_move_via_the_menu(page, user):
    lead = _lead(user, budget_amount="900", purchase_timeframe="this year")
    page.goto(f"{page.base}/board")
    summary = _card(page, "lead", lead.id).locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    button = _card(page, "lead", lead.id).get_by_role("button", name="Develop")
    button.focus()
    page.keyboard.press("Enter")
    page.locator('ol.cards[data-stage="develop"] .card').first.wait_for()
    with db.connection_context():
        assert Lead.get_by_id(lead.id).status == "qualified"
    assert page.console_errors == []
