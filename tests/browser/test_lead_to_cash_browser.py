"""The whole sale through the detail panels alone: lead -> opportunity -> quote -> order -> paid invoice."""
import re

from models import Account, Invoice, Lead, Product, Settings, User, db


def test_a_seller_takes_a_lead_to_a_paid_invoice_through_the_panels(page, user, screenshot):
    with db.connection_context():
        actor = User.get(User.email == user.email)
        settings = Settings.load()
        settings.company_name, settings.address, settings.vat_id = ("Falkenberg IT GmbH",
                                                                    "Königstr. 1\n70173 Stuttgart\nDE", "DE287654321")
        settings.save()
        Product.create_product(actor, sku="SRV-2U", name="Rack server 2U", list_price="8950.00", tax_rate="19")
        lead = Lead.create_lead(actor, name="Lars Petersen", company="Hanse Medizintechnik GmbH",
                                email="lars@hanse.example", topic="Server room", budget_amount="18000",
                                purchase_timeframe="this quarter")
    panel = page.locator("#panel")
    page.goto(f"{page.base}/leads/{lead.id}")
    panel.get_by_role("button", name="Qualify", exact=True).click()
    panel.locator(".eyebrow", has_text="Opportunity").wait_for()
    assert panel.locator("h2").inner_text() == "Server room"

    with db.connection_context():
        account = Account.get(Account.name == "Hanse Medizintechnik GmbH")
    opp_url = page.url
    page.goto(f"{page.base}/accounts/{account.id}")
    for name, value in (("street", "Hafenweg 2"), ("postal_code", "20457"), ("city", "Hamburg")):
        field = page.locator(f"#field-account-{account.id}-{name}")
        field.locator(".ifield-value").click()
        page.locator(f"#field-account-{account.id}-{name} input[name={name}]").fill(value)
        page.locator(f"#field-account-{account.id}-{name} input[name={name}]").press("Enter")
        page.locator(f"#field-account-{account.id}-{name} .ifield-value", has_text=value).wait_for()

    page.goto(opp_url)
    lines = panel.locator(".lines")
    lines.locator('input[name="q"]').fill("server")
    page.locator(".product-pick", has_text="Rack server 2U").click()
    page.wait_for_function("document.querySelector('#panel .lines [data-net]').dataset.net === '8950.00'")
    panel.get_by_role("button", name="Move to Propose", exact=True).click()
    panel.locator(".eyebrow", has_text="Propose").wait_for()

    panel.get_by_role("link", name=re.compile(r"Quote Q-\d+ rev 1")).click()
    panel.locator("[data-action='activate'] button").click()
    panel.locator(".eyebrow", has_text="active").wait_for()
    assert panel.locator("input[name='unit_price']").count() == 0

    panel.get_by_role("link", name="Server room").first.click()
    panel.get_by_role("button", name="Move to Close", exact=True).click()
    panel.locator(".eyebrow", has_text="Close").wait_for()
    panel.get_by_role("button", name="Close as won", exact=True).click()
    dialog = page.locator("dialog.move-dialog")
    dialog.wait_for()
    assert dialog.locator("input[name='actual_revenue']").input_value() == "8950.00"
    dialog.locator("button[type=submit]").click()
    panel.locator(".eyebrow", has_text="won").wait_for()

    panel.get_by_role("link", name=re.compile(r"Order SO-\d+")).click()
    panel.locator("[data-action='fulfil'] button").click()
    panel.locator(".eyebrow", has_text="fulfilled").wait_for()
    panel.locator("[data-action='invoice'] button").click()
    panel.locator("[data-action='issue'] button").click()
    panel.locator(".eyebrow", has_text="issued").wait_for()
    panel.locator("[data-action='paid'] button").click()
    panel.locator(".eyebrow", has_text="paid").wait_for()
    screenshot(page, "lead-to-cash-paid-invoice")
    with db.connection_context():
        invoice = Invoice.get()
        assert invoice.status == "paid" and re.fullmatch(r"INV-\d{4}-00001", invoice.number)
        assert invoice.pdf_sha256 and invoice.opportunity.column == "invoiced"
    assert page.console_errors == []
