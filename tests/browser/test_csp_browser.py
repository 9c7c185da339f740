"""The Content-Security-Policy on: board, drag, dialog, panel, inline edit and line editor all work
and the browser reports no violation (the other browser tests run with CSP bypassed so that
Playwright's own page-side helpers may evaluate code)."""
from models import Lead, Opportunity, Product, User, db


def test_the_app_works_under_its_csp_without_violations(browser, live_server, user, console_watch):
    with db.connection_context():
        actor = User.get(User.email == user.email)
        Product.create_product(actor, sku="TAB-10", name="Rugged tablet", list_price="640.00", tax_rate="19")
        lead = Lead.create_lead(actor, name="Dana Fischer", company="Nordwind GmbH", email="dana@nordwind.example",
                                topic="Scanners")
    context = browser.new_context(viewport={"width": 1920, "height": 1000})
    page = context.new_page()
    errors = console_watch(page)
    page.goto(f"{live_server}/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "correct-horse-9")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/board")
    assert "script-src 'self'" in page.request.get(f"{live_server}/board").headers["content-security-policy"]

    page.locator(f'[data-record="lead:{lead.id}"]').drag_to(page.locator('ol.cards[data-stage="develop"]'))
    dialog = page.locator("dialog.move-dialog")
    dialog.wait_for()
    dialog.locator('input[name="budget_amount"]').fill("12500")
    dialog.locator('select[name="purchase_timeframe"]').select_option("this quarter")
    dialog.locator("button[type=submit]").click()
    dialog.wait_for(state="detached")
    with db.connection_context():
        opp = Opportunity.get(Opportunity.lead == lead.id)
    card = page.locator(f'ol.cards[data-stage="develop"] [data-record="opportunity:{opp.id}"]')
    card.wait_for()
    card.locator(".card-title").click()
    panel = page.locator("#panel")
    panel.locator(".eyebrow", has_text="Opportunity").wait_for()
    field = page.locator(f"#field-opportunity-{opp.id}-competitor")
    field.locator(".ifield-value").click()
    page.locator(f"#field-opportunity-{opp.id}-competitor input[name=competitor]").fill("Acme Devices")
    page.locator(f"#field-opportunity-{opp.id}-competitor input[name=competitor]").press("Enter")
    page.locator(f"#field-opportunity-{opp.id}-competitor .ifield-value", has_text="Acme Devices").wait_for()
    panel.locator('input[name="q"]').fill("tablet")
    page.locator(".product-pick", has_text="Rugged tablet").click()
    panel.locator("[data-net='640.00']").wait_for()
    assert errors == []
    context.close()
