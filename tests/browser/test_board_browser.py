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
    assert not page.locator("#board-dialog").is_visible(), "the dialog backdrop must go away after a move"
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


def _deal_in(owner, column):
    """An opportunity taken through the real rules to `column` (develop, propose or close)."""
    with db.connection_context():
        actor = User.get(User.email == owner.email)
        lead = Lead.create_lead(actor, name="Jonas Weber", company="Weber Logistik", email="jonas@weber.example",
                                topic="Fleet tablets", budget_amount="8000", purchase_timeframe="this quarter")
        opp = lead.qualify(actor)
        product = Product.get_or_none(Product.sku == "TAB-10") or Product.create_product(
            actor, sku="TAB-10", name="Rugged tablet", list_price="640.00", tax_rate="19")
        opp.add_line(actor, product=product.id, quantity="10")
        if column in ("propose", "close"):
            opp.move_to(actor, "propose")
        if column == "close":
            opp.move_to(actor, "close", activate_quote="1")
        return Opportunity.get_by_id(opp.id)


def test_win_into_fulfill_asks_revenue_and_date_prefilled(page, user, screenshot):
    opp = _deal_in(user, "close")
    page.goto(f"{page.base}/board")
    _card(page, "opportunity", opp.id).drag_to(_column(page, "fulfill"))
    dialog = page.locator("dialog.move-dialog")
    dialog.wait_for()
    assert dialog.locator('input[name="actual_revenue"]').input_value() == "6400.00"
    assert dialog.locator('input[name="actual_close_date"]').input_value() != ""
    screenshot(page, "board-win-dialog")
    dialog.locator('input[name="actual_revenue"]').fill("6250")
    dialog.locator("button[type=submit]").click()
    _column(page, "fulfill").locator(f'[data-record="opportunity:{opp.id}"]').wait_for()
    with db.connection_context():
        won = Opportunity.get_by_id(opp.id)
        assert won.status == "won" and won.actual_revenue == Decimal("6250.00")
        assert won.order is not None
    assert page.locator("#head-fulfill [data-total]").get_attribute("data-total") == "6250.00"
    assert page.locator("#head-close [data-count]").get_attribute("data-count") == "0"


def test_lose_asks_for_a_reason(page, user):
    opp = _deal_in(user, "propose")
    page.goto(f"{page.base}/board")
    _card(page, "opportunity", opp.id).drag_to(_column(page, "lost"))
    dialog = page.locator("dialog.move-dialog")
    dialog.wait_for()
    dialog.locator('select[name="close_reason"]').select_option("competitor")
    dialog.locator('input[name="competitor"]').fill("Acme Devices")
    dialog.locator("button[type=submit]").click()
    _column(page, "lost").locator(f'[data-record="opportunity:{opp.id}"]').wait_for()
    with db.connection_context():
        lost = Opportunity.get_by_id(opp.id)
        assert (lost.status, lost.close_reason, lost.competitor) == ("lost", "competitor", "Acme Devices")


def test_skip_refused_with_reason_and_card_goes_back(page, user):
    opp = _deal_in(user, "develop")
    with db.connection_context():
        line = opp.line_rows()[0]
        opp.remove_line(None, line.id)
    page.goto(f"{page.base}/board")
    _card(page, "opportunity", opp.id).drag_to(_column(page, "close"))
    toast = page.locator(".toast-error")
    toast.wait_for()
    assert "Cannot skip to Close" in toast.inner_text()
    _column(page, "develop").locator(f'[data-record="opportunity:{opp.id}"]').wait_for()
    assert _column(page, "close").locator(f'[data-record="opportunity:{opp.id}"]').count() == 0
    assert page.locator("dialog.move-dialog").count() == 0


def test_undo_moves_the_card_back(page, user):
    opp = _deal_in(user, "develop")
    page.goto(f"{page.base}/board")
    _card(page, "opportunity", opp.id).drag_to(_column(page, "propose"))
    _column(page, "propose").locator(f'[data-record="opportunity:{opp.id}"]').wait_for()
    page.locator(".toast").get_by_role("button", name="Undo").click()
    _column(page, "develop").locator(f'[data-record="opportunity:{opp.id}"]').wait_for()
    assert page.locator("#head-propose [data-count]").get_attribute("data-count") == "0"
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).column == "develop"


def test_stale_move_shows_who_changed_it_and_keeps_the_card(page, user):
    opp = _deal_in(user, "develop")
    page.goto(f"{page.base}/board")
    with db.connection_context():
        Opportunity.get_by_id(opp.id).update_fields(User.get(User.email == user.email), topic="Renamed elsewhere")
    _card(page, "opportunity", opp.id).drag_to(_column(page, "propose"))
    toast = page.locator(".toast-error")
    toast.wait_for()
    assert "changed by Sam Seller" in toast.inner_text()
    card = _column(page, "develop").locator(f'[data-record="opportunity:{opp.id}"]')
    card.wait_for()
    assert "Renamed elsewhere" in card.inner_text()
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).column == "develop"


def test_load_more_when_scrolled_into_view(page, user):
    with db.connection_context():
        actor = User.get(User.email == user.email)
        for i in range(32):
            Lead.create_lead(actor, name=f"Prospect {i:02d}", company=f"Firm {i}", email=f"p{i}@firm.example")
    page.goto(f"{page.base}/board")
    column = _column(page, "qualify")
    assert column.locator(".card").count() == 25
    column.locator(".load-more").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#cards-qualify .card').length === 32")
    assert column.locator(".load-more").count() == 0


def test_card_opens_its_panel_and_the_url_follows(page, user, screenshot):
    opp = _deal_in(user, "propose")
    page.goto(f"{page.base}/board")
    _card(page, "opportunity", opp.id).locator(".card-title").click()
    page.locator("#panel h2").wait_for()
    assert "Fleet tablets" in page.locator("#panel h2").inner_text()
    assert f"panel=opportunity:{opp.id}" in page.url.replace("%3A", ":")
    screenshot(page, "board-panel")
    page.reload()
    assert "Fleet tablets" in page.locator("#panel h2").inner_text()
    page.locator("#panel .panel-close").click()
    page.wait_for_function("document.querySelector('#panel').hidden === true")


def test_board_has_no_serious_accessibility_violations(page, user):
    from axe_playwright_python.sync_playwright import Axe
    _deal_in(user, "close")
    _lead(user)
    page.goto(f"{page.base}/board")
    results = Axe().run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], [(v["id"], v["help"], [n["target"] for n in v["nodes"][:3]]) for v in serious]


def test_phone_layout_and_menu_move(browser, live_server, user, screenshot):
    opp = _deal_in(user, "develop")
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    pg = context.new_page()
    pg.goto(f"{live_server}/login")
    pg.fill("input[name=email]", user.email)
    pg.fill("input[name=password]", "correct-horse-9")
    pg.click("button[type=submit]")
    pg.wait_for_url(f"{live_server}/board")
    screenshot(pg, "board-phone")
    card = pg.locator(f'[data-record="opportunity:{opp.id}"]')
    card.locator("summary").tap()
    card.get_by_role("button", name="Propose").tap()
    pg.locator(f'ol.cards[data-stage="propose"] [data-record="opportunity:{opp.id}"]').wait_for()
    context.close()


def test_column_checklist_shows_on_hover_and_keyboard_focus(page, user):
    page.goto(f"{page.base}/board")
    tip = page.locator("#check-develop")
    assert not tip.is_visible()
    page.locator("#head-develop .checklist").focus()
    assert tip.is_visible() and "At least one product line" in tip.inner_text()
    page.locator("#head-qualify h2").hover()
    page.locator("#head-propose .checklist").hover()
    assert page.locator("#check-propose").is_visible()


def test_a_failed_move_request_puts_the_card_back_with_a_message(page, user):
    lead = _lead(user, budget_amount="900", purchase_timeframe="this year")
    page.goto(f"{page.base}/board")
    page.route("**/board/move", lambda route: route.fulfill(status=500, body="boom"))
    page.console_errors.clear()
    _card(page, "lead", lead.id).drag_to(_column(page, "develop"))
    page.locator(".toast-error", has_text="did not reach the server").wait_for()
    _column(page, "qualify").locator(f'[data-record="lead:{lead.id}"]').wait_for()
    assert _column(page, "develop").locator(f'[data-record="lead:{lead.id}"]').count() == 0
    with db.connection_context():
        assert Lead.get_by_id(lead.id).status == "open"


def test_a_teammates_card_is_read_only_it_does_not_drag_and_offers_no_moves(page, user):
    """A seller reads the team's cards but changes only their own: a teammate's card does not move when
    dragged (no request, nothing changed) and its menu says why instead of offering moves."""
    from models import Team
    with db.connection_context():
        team = Team.create(name="North")
        User.update(team=team.id).where(User.id == user.id).execute()
        mate = User.create_user("sue@example.com", "correct-horse-9", "Sue Seller", "seller", team=team.id)
    theirs = _lead(mate, name="Sue's prospect", email="prospect@sue.example")
    mine = _lead(user, name="My prospect", email="prospect@me.example")
    requests = []
    page.on("request", lambda req: requests.append(req.url) if "/board/move" in req.url else None)
    page.goto(f"{page.base}/board")
    card = _card(page, "lead", theirs.id)
    assert "read-only" in card.get_attribute("class")
    assert "read-only" not in _card(page, "lead", mine.id).get_attribute("class")
    card.drag_to(_column(page, "develop"))
    page.wait_for_timeout(500)
    assert requests == []
    assert _column(page, "qualify").locator(f'[data-record="lead:{theirs.id}"]').count() == 1
    card.locator(".move-menu summary").click()
    assert "only they or a manager of the team can move it" in card.locator(".menu-note").inner_text()
    assert card.locator(".move-menu button").count() == 0
    with db.connection_context():
        assert Lead.get_by_id(theirs.id).version == 1
