"""Accounts, products, settings and the global search in a real browser."""
import base64

from models import Account, Contact, Product, Settings, User, db

PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def _actor(user):
    return User.get(User.email == user.email)


def _account(user, **values):
    values.setdefault("name", "Nordwind GmbH")
    with db.connection_context():
        return Account.create_account(_actor(user), **values)


def _fresh(record):
    with db.connection_context():
        return type(record).get_by_id(record.id)


def _serious_a11y_violations(page):
    from axe_playwright_python.sync_playwright import Axe
    results = Axe().run(page)
    return [(v["id"], v["help"], [n["target"] for n in v["nodes"][:3]])
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def test_edit_an_account_field_inline_valid_and_invalid(page, user, screenshot):
    account = _account(user, email="info@nordwind.example", city="Hamburg")
    with db.connection_context():
        Contact.create_contact(_actor(user), name="Dana Fischer", account=account.id, email="dana@nordwind.example")
    page.goto(f"{page.base}/accounts/{account.id}")
    screenshot(page, "catalog-account-panel")

    city = page.locator(f"#field-account-{account.id}-city")
    city.locator("a.ifield-value").click()
    city.locator("input[name=city]").fill("Bremen")
    city.locator("input[name=city]").press("Enter")
    city.locator("a.ifield-value", has_text="Bremen").wait_for()
    assert _fresh(account).city == "Bremen" and _fresh(account).version == 2
    page.locator(f"#head-account-{account.id} .eyebrow", has_text="Bremen").wait_for()
    assert page.locator(f"#version-account-{account.id}").get_attribute("value") == "2"
    page.locator(f"#timeline-account-{account.id}", has_text="city").wait_for()

    name = page.locator(f"#field-account-{account.id}-name")
    name.locator("a.ifield-value").click()
    name.locator("input[name=name]").fill("")
    name.locator("input[name=name]").press("Enter")
    name.locator(".field-error", has_text="This field is required.").wait_for()
    assert name.locator("input[name=name]").get_attribute("aria-invalid") == "true"
    screenshot(page, "catalog-account-inline-error")
    assert _fresh(account).name == "Nordwind GmbH" and _fresh(account).version == 2
    name.locator("input[name=name]").press("Escape")
    name.locator("a.ifield-value", has_text="Nordwind GmbH").wait_for()

    name.locator("a.ifield-value").click()
    name.locator("input[name=name]").fill("Nordwind Logistik GmbH")
    name.get_by_role("button", name="Save").click()
    page.locator(f"#head-account-{account.id} h2", has_text="Nordwind Logistik GmbH").wait_for()
    assert _fresh(account).name == "Nordwind Logistik GmbH" and _fresh(account).version == 3
    screenshot(page, "catalog-account-after-edit")
    assert page.console_errors == []


def test_create_a_product_and_find_it_in_the_list(page, user, screenshot):
    with db.connection_context():
        Product.create_product(_actor(user), sku="SC-1", name="Barcode scanner", list_price="199.90")
    page.goto(f"{page.base}/products")
    page.get_by_role("link", name="New product").click()
    page.fill("#f-sku", "SC-1")
    page.fill("#f-name", "Label printer")
    page.fill("#f-list_price", "-3")
    page.get_by_role("button", name="Create product").click()
    page.locator('[data-field="list_price"] .field-error', has_text="Must be at least 0").wait_for()
    screenshot(page, "catalog-product-form-errors")
    page.fill("#f-list_price", "349.00")
    page.get_by_role("button", name="Create product").click()
    page.locator('[data-field="sku"] .field-error', has_text="Another product already uses this SKU.").wait_for()
    assert page.locator("#f-name").input_value() == "Label printer"
    with db.connection_context():
        assert Product.select().count() == 1

    page.fill("#f-sku", "LP-200")
    page.select_option("#f-unit", "piece")
    page.fill("#f-tax_rate", "19")
    page.get_by_role("button", name="Create product").click()
    page.locator("#panel h2", has_text="Label printer").wait_for()
    with db.connection_context():
        product = Product.get(Product.sku == "LP-200")
    assert page.url.endswith(f"/products/{product.id}")
    screenshot(page, "catalog-product-panel")

    page.goto(f"{page.base}/products")
    search = page.get_by_label("Search products")
    search.fill("printer")
    search.press("Enter")
    page.wait_for_url("**/products?q=printer*")
    row = page.locator(f'#list [data-record="product:{product.id}"]')
    row.wait_for()
    assert page.locator("#list tbody tr").count() == 1
    assert "349.00" in row.inner_text()
    screenshot(page, "catalog-product-list")

    row.get_by_role("link", name="LP-200").click()
    page.get_by_role("button", name="Deactivate").click()
    page.get_by_role("button", name="Reactivate").wait_for()
    assert _fresh(product).active is False
    page.goto(f"{page.base}/products")
    page.locator("select[name=status]").select_option("inactive")
    page.locator(f'#list [data-record="product:{product.id}"]').wait_for()
    assert page.console_errors == []


def test_global_search_finds_a_contact(page, user, screenshot):
    account = _account(user, name="Zeppelin Werke AG", vat_id="DE811122233")
    with db.connection_context():
        contact = Contact.create_contact(_actor(user), name="Quentin Quast", email="q.quast@zeppelin.example",
                                         account=account.id)
    page.goto(f"{page.base}/search")
    page.get_by_label("Search everything").fill("quast")
    hit = page.locator(f'#search-results [data-record="contact:{contact.id}"]')
    hit.wait_for()
    assert page.url.endswith("/search?q=quast")
    page.get_by_label("Search everything").fill("zeppelin")
    page.locator(f'#search-results [data-record="account:{account.id}"]').wait_for()
    hit.wait_for()
    screenshot(page, "catalog-search-results")
    hit.get_by_role("link", name="Quentin Quast").click()
    page.locator("#panel h2", has_text="Quentin Quast").wait_for()
    assert page.url.endswith(f"/contacts/{contact.id}")
    assert page.console_errors == []


def test_settings_read_only_for_a_seller_and_saved_by_a_manager(page, user, screenshot):
    page.goto(f"{page.base}/settings")
    page.locator(".settings-readonly").wait_for()
    assert page.locator("#f-company_name").count() == 0
    screenshot(page, "catalog-settings-seller")
    with db.connection_context():
        User.create_user("mia@example.com", "correct-horse-9", "Mia Manager", "manager")
    page.get_by_role("button", name="Log out").click()
    page.fill("input[name=email]", "mia@example.com")
    page.fill("input[name=password]", "correct-horse-9")
    page.click("button[type=submit]")
    page.wait_for_url(f"{page.base}/board")
    page.goto(f"{page.base}/settings")
    page.fill("#f-company_name", "Falkenberg IT GmbH")
    page.fill("#f-quote_validity_days", "0")
    page.get_by_role("button", name="Save settings").click()
    page.locator('[data-field="quote_validity_days"] .field-error').wait_for()
    screenshot(page, "catalog-settings-error")
    page.locator(".error-summary a").click()
    assert page.evaluate("document.activeElement.id") == "f-quote_validity_days"
    screenshot(page, "catalog-settings-error-field")
    page.fill("#f-quote_validity_days", "45")
    page.set_input_files("#f-logo", files=[{"name": "logo.png", "mimeType": "image/png", "buffer": PNG_1PX}])
    page.get_by_role("button", name="Save settings").click()
    page.locator(".flash", has_text="Settings saved.").wait_for()
    page.locator(".settings-logo img").wait_for()
    screenshot(page, "catalog-settings-saved")
    with db.connection_context():
        settings = Settings.load()
        assert settings.company_name == "Falkenberg IT GmbH" and settings.quote_validity_days == 45
        assert bytes(settings.logo) == PNG_1PX
    assert page.evaluate("document.querySelector('.settings-logo img').naturalWidth") == 1
    assert page.console_errors == []


def test_catalog_pages_have_no_serious_accessibility_violations(page, user):
    account = _account(user)
    with db.connection_context():
        Contact.create_contact(_actor(user), name="Dana Fischer", account=account.id)
        product = Product.create_product(_actor(user), sku="SC-1", name="Barcode scanner", list_price="199.90")
    for path in (f"/accounts/{account.id}", "/accounts", "/contacts", "/contacts/new", f"/products/{product.id}",
                 "/products", "/products/new", "/settings", "/search?q=dana"):
        page.goto(f"{page.base}{path}")
        assert _serious_a11y_violations(page) == [], path


def test_a_form_submitted_the_moment_it_appears_is_sent_by_htmx(page, user):
    """Content swapped in is htmx-enabled at once: an inline field's form submitted in the task right after
    its swap (a fast Enter) saves in place instead of leaving the page with a plain POST."""
    account = _account(user, city="Hamburg")
    page.goto(f"{page.base}/accounts/{account.id}")
    field = f"#field-account-{account.id}-city"
    page.evaluate("""(field) => {
        window.samePage = true;  // gone if the form leaves the page
        document.body.addEventListener("htmx:afterSwap", (event) => {
            const form = document.querySelector(field + " form");
            if (form && event.detail.target.id === field.slice(1)) {
                form.querySelector("input[name=city]").value = "Kiel";
                setTimeout(() => form.requestSubmit(), 0);  // the next task: as fast as a key press can be
            }
        }, {once: true});
        document.querySelector(field + " a.ifield-value").click();
    }""", field)
    page.locator(f"{field} a.ifield-value", has_text="Kiel").wait_for()
    assert page.evaluate("() => window.samePage === true"), "the form was sent as a plain POST"
    assert _fresh(account).city == "Kiel"
