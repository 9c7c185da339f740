"""Web-to-lead end to end in a real browser: a visitor fills in the public form (with the app's CSP on),
is told what is missing, sends it, and the lead is on its owner's board in Qualify."""
from models import CaptureForm, Lead, User, db


def test_visitor_form_to_lead_on_the_board(browser, live_server, user, screenshot, console_watch):
    with db.connection_context():
        admin = User.create_user("ada@example.com", "correct-horse-9", "Ada Admin", "admin")
        form = CaptureForm.create_form(admin, name="Ask for a demo", thank_you="Thank you, Vera will call you.",
                                       source="web form", campaign="fleet-webinar", owner=user.id,
                                       fields=["company", "phone", "purchase_timeframe", "notes"],
                                       required=["company"])
    visitor = browser.new_context(viewport={"width": 1280, "height": 900})
    page = visitor.new_page()
    errors = console_watch(page)
    page.goto(f"{live_server}/f/{form.key}")
    assert page.locator("h1").inner_text() == "Ask for a demo"
    box = page.locator('input[name="website_url"]').bounding_box()  # the honeypot stays out of sight
    assert box is None or box["x"] + box["width"] <= 0
    page.fill("#f-name", "Vera Visitor")
    page.fill("#f-email", "vera@visitor.example")
    page.click("button[type=submit]")
    page.wait_for_selector("#f-company-error")
    assert page.locator("#f-company").get_attribute("aria-invalid") == "true"
    assert page.input_value("#f-name") == "Vera Visitor"  # what was typed stays
    screenshot(page, "capture-public-errors")
    page.fill("#f-company", "Visitor Logistics GmbH")
    page.select_option("#f-purchase_timeframe", "next quarter")
    page.fill("#f-notes", "40 vans, we need tracking and e-invoices.")
    page.click("button[type=submit]")
    page.wait_for_selector(".public-thanks")
    assert "Vera will call you" in page.inner_text(".public-thanks")
    screenshot(page, "capture-public-thanks")
    assert not errors, errors
    assert not visitor.cookies()  # no session for visitors
    visitor.close()

    with db.connection_context():
        lead = Lead.get(Lead.email == "vera@visitor.example")
        assert (lead.owner_id, lead.campaign, lead.purchase_timeframe) == (user.id, "fleet-webinar", "next quarter")
    seller = browser.new_context(viewport={"width": 1600, "height": 900}, bypass_csp=True)
    board = seller.new_page()
    board.set_default_timeout(15000)
    board.goto(f"{live_server}/login")
    board.fill("input[name=email]", user.email)
    board.fill("input[name=password]", "correct-horse-9")
    board.click("button[type=submit]")
    board.wait_for_url(f"{live_server}/board")
    card = board.locator(f'ol.cards[data-stage="qualify"] [data-record="lead:{lead.id}"]')
    card.wait_for()
    assert "Visitor Logistics GmbH" in card.inner_text()
    seller.close()
