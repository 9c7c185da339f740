"""Detail panels in a real browser: inline editing, the line editor, activities."""
from models import Lead, Opportunity, Product, User, db


def _deal(owner):
    with db.connection_context():
        actor = User.get(User.email == owner.email)
        lead = Lead.create_lead(actor, name="Jonas Weber", company="Weber Logistik", email="jonas@weber.example",
                                topic="Fleet tablets", budget_amount="8000", purchase_timeframe="this quarter")
        opp = lead.qualify(actor)
        Product.create_product(actor, sku="TAB-10", name="Rugged tablet", list_price="640.00", tax_rate="19")
        Product.create_product(actor, sku="DOCK-2", name="Vehicle dock", list_price="120.00", tax_rate="19")
        return Opportunity.get_by_id(opp.id)


def test_inline_edit_valid_and_invalid(page, user, screenshot):
    opp = _deal(user)
    page.goto(f"{page.base}/board?panel=opportunity:{opp.id}")
    field = page.locator(f"#field-opportunity-{opp.id}-probability")
    field.locator(".ifield-value").click()
    field = page.locator(f"#field-opportunity-{opp.id}-probability")
    field.locator("input[name=probability]").fill("140")
    field.locator("input[name=probability]").press("Enter")
    error = page.locator(f"#field-opportunity-{opp.id}-probability-error")
    error.wait_for()
    assert "from 0 to 100" in error.inner_text()
    screenshot(page, "panel-field-error")
    page.locator(f"#field-opportunity-{opp.id}-probability input[name=probability]").fill("35")
    page.locator(f"#field-opportunity-{opp.id}-probability input[name=probability]").press("Enter")
    page.locator(f"#field-opportunity-{opp.id}-probability .ifield-value").wait_for()
    assert page.locator(f"#field-opportunity-{opp.id}-probability .ifield-value").inner_text() == "35"
    page.wait_for_function(
        f"document.querySelector('#card-opportunity-{opp.id}') && "
        f"document.querySelector('#head-develop [data-weighted]').dataset.weighted === '2800.00'")
    topic = page.locator(f"#field-opportunity-{opp.id}-topic")
    topic.locator(".ifield-value").click()
    page.locator(f"#field-opportunity-{opp.id}-topic input[name=topic]").fill("Something else")
    page.locator(f"#field-opportunity-{opp.id}-topic input[name=topic]").press("Escape")
    page.locator(f"#field-opportunity-{opp.id}-topic .ifield-value").wait_for()
    assert page.locator(f"#field-opportunity-{opp.id}-topic .ifield-value").inner_text() == "Fleet tablets"
    with db.connection_context():
        fresh = Opportunity.get_by_id(opp.id)
        assert (fresh.probability, fresh.topic) == (35, "Fleet tablets")
    assert page.console_errors == []


def test_add_lines_and_see_totals_change(page, user, screenshot):
    opp = _deal(user)
    page.goto(f"{page.base}/opportunities/{opp.id}")
    lines = page.locator(f"#lines-opportunity-{opp.id}")
    lines.locator('input[name="q"]').fill("tablet")
    page.locator(".product-pick", has_text="Rugged tablet").click()
    page.wait_for_function(f"document.querySelector('#lines-opportunity-{opp.id} [data-net]').dataset.net === '640.00'")
    qty = page.locator(f"#lines-opportunity-{opp.id} input[name='quantity']").first
    qty.fill("5")
    qty.press("Tab")
    page.wait_for_function(f"document.querySelector('#lines-opportunity-{opp.id} [data-gross]').dataset.gross === '3808.00'")
    free = page.locator(f"#lines-opportunity-{opp.id} .free-line")
    free.locator('input[name="description"]').fill("Rollout workshop")
    free.locator('input[name="unit_price"]').fill("450")
    free.locator('input[name="tax_rate"]').fill("7")
    free.locator("button").click()
    page.wait_for_function(f"document.querySelector('#lines-opportunity-{opp.id} [data-net]').dataset.net === '3650.00'")
    assert "Tax 7 %" in page.locator(f"#lines-opportunity-{opp.id} tfoot").inner_text()
    screenshot(page, "panel-lines")
    with db.connection_context():
        assert [l.description for l in Opportunity.get_by_id(opp.id).line_rows()] == ["Rugged tablet", "Rollout workshop"]
    assert page.console_errors == []


def test_a_zero_rate_line_takes_its_exemption_and_goods_or_service_in_the_editor(page, user, screenshot):
    """At 0 % the line editor asks whether goods or a service are supplied and for an exemption's ground;
    each is saved on change, the tax row says how much is exempt, and raising the rate ends the exemption."""
    opp = _deal(user)
    page.goto(f"{page.base}/opportunities/{opp.id}")
    lines = f"#lines-opportunity-{opp.id}"
    free = page.locator(f"{lines} .free-line")
    free.locator('input[name="description"]').fill("Certification exam fee")
    free.locator('input[name="unit_price"]').fill("250")
    free.locator('input[name="tax_rate"]').fill("0")
    free.locator("button").click()
    page.locator(f"{lines} input[name='tax_exemption']").wait_for()
    assert page.locator(f"{lines} select.cell-supply").count() == 1  # only the 0 % line asks (and the add form)
    page.locator(f"{lines} select.cell-supply").select_option("goods")
    page.locator(f"{lines} select.cell-supply option[value='goods'][selected]").wait_for(state="attached")
    ground = page.locator(f"{lines} input[name='tax_exemption']")
    ground.fill("§ 4 Nr. 21 UStG")
    ground.press("Tab")
    page.wait_for_function(f"document.querySelector('{lines} tfoot').innerText.includes('of it VAT exempt')")
    screenshot(page, "panel-lines-exempt")
    with db.connection_context():
        line = Opportunity.get_by_id(opp.id).line_rows()[-1]
        assert (line.supply, line.tax_exemption) == ("goods", "§ 4 Nr. 21 UStG")
    rate = page.locator(f"{lines} tbody input[name='tax_rate']").last
    rate.fill("19")
    rate.press("Tab")
    page.wait_for_function(f"!document.querySelector('{lines} input[name=tax_exemption]')")
    with db.connection_context():
        line = Opportunity.get_by_id(opp.id).line_rows()[-1]
        assert (line.tax_rate, line.tax_exemption) == (19, "")
    assert page.console_errors == []


def test_line_editor_fits_the_board_panel_on_a_laptop_screen(page, user, screenshot):
    """In the 560 px panel beside the board, every column of the line editor (the remove button too) is
    visible without scrolling sideways, with an 8-digit line net, and a five-digit price, a quantity
    with three decimals and a discount with one are shown whole in their fields."""
    opp = _deal(user)
    with db.connection_context():
        actor = User.get(User.email == user.email)
        opp.add_line(actor, description="Server rack with redundant power supplies", quantity="12.125",
                     unit_price="48250.00", discount_pct="12.5", tax_rate="19")
        opp.add_line(actor, description="Installation", quantity="1250", unit_price="9500.00", tax_rate="19")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{page.base}/board?panel=opportunity:{opp.id}")
    lines = page.locator(f"#lines-opportunity-{opp.id}")
    lines.wait_for()
    widths = lines.evaluate("el => [el.scrollWidth, el.clientWidth]")
    assert widths[0] <= widths[1], f"the line editor scrolls sideways: {widths[0]} px in {widths[1]} px"
    for name, value in (("unit_price", "48250.00"), ("quantity", "12.125"), ("discount_pct", "12.5")):
        field = lines.locator(f"input[name='{name}']").first
        assert field.input_value() == value
        assert field.evaluate("el => el.scrollWidth <= el.clientWidth"), f"{value} is cut off in its field"
    remove = lines.locator("button[aria-label='Remove line 1']")
    panel = page.locator("#panel").bounding_box()
    box = remove.bounding_box()
    assert box["x"] + box["width"] <= panel["x"] + panel["width"]
    screenshot(page, "panel-lines-laptop")
    assert page.console_errors == []


def test_log_a_task_and_see_it_on_the_timeline(page, user):
    opp = _deal(user)
    page.goto(f"{page.base}/board?panel=opportunity:{opp.id}")
    form = page.locator(f"#activity-form-opportunity-{opp.id}")
    form.locator('select[name="kind"]').select_option("task")
    form.locator('input[name="subject"]').fill("Send the rollout plan")
    form.locator('input[name="due_date"]').fill("2030-02-01")
    form.locator("button").click()
    page.locator(f"#timeline-opportunity-{opp.id}", has_text="Send the rollout plan").wait_for()
    page.locator(f"#card-opportunity-{opp.id} .next-activity").wait_for()
    assert "1 Feb 2030" in page.locator(f"#card-opportunity-{opp.id} .next-activity").inner_text()


def test_line_edit_after_a_field_edit_on_a_full_page_is_not_stale(page, user):
    opp = _deal(user)
    with db.connection_context():
        actor = User.get(User.email == user.email)
        opp.add_line(actor, description="Setup", quantity="1", unit_price="100", tax_rate="19")
    page.goto(f"{page.base}/opportunities/{opp.id}")
    field = page.locator(f"#field-opportunity-{opp.id}-competitor")
    field.locator(".ifield-value").click()
    page.locator(f"#field-opportunity-{opp.id}-competitor input[name=competitor]").fill("Acme Devices")
    page.locator(f"#field-opportunity-{opp.id}-competitor input[name=competitor]").press("Enter")
    page.locator(f"#field-opportunity-{opp.id}-competitor .ifield-value", has_text="Acme Devices").wait_for()
    qty = page.locator(f"#lines-opportunity-{opp.id} input[name='quantity']").first
    qty.fill("3")
    qty.press("Tab")
    page.wait_for_function(f"document.querySelector('#lines-opportunity-{opp.id} [data-net]').dataset.net === '300.00'")
    assert page.locator(f"#lines-opportunity-{opp.id} .field-error").count() == 0


def test_cancel_after_typing_does_not_save(page, user):
    opp = _deal(user)
    page.goto(f"{page.base}/opportunities/{opp.id}")
    page.locator(f"#field-opportunity-{opp.id}-topic .ifield-value").click()
    page.locator(f"#field-opportunity-{opp.id}-topic input[name=topic]").fill("Typed but abandoned")
    page.locator(f"#field-opportunity-{opp.id}-topic").get_by_role("link", name="Cancel").click()
    page.locator(f"#field-opportunity-{opp.id}-topic .ifield-value", has_text="Fleet tablets").wait_for()
    page.wait_for_timeout(300)
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).topic == "Fleet tablets"
