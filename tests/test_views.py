"""HTTP tests: login, the board page and its hooks, filters, paging, panels, and the move endpoint."""
import re
from decimal import Decimal

import pytest

from clients import HtmxClient, queries_of
from models import Account, Activity, HistoryEvent, Lead, Opportunity, Product, User, db


def _count(html, stage):
    block = re.search(rf'id="head-{stage}".*?data-count="(\d+)".*?data-total="([\d.]+)".*?data-weighted="([\d.]+)"',
                      html, re.S)
    return int(block.group(1)), Decimal(block.group(2)), Decimal(block.group(3))


def _ready_lead(owner, **extra):
    values = {"name": "Dana Fischer", "company": "Nordwind GmbH", "email": "dana@nordwind.example",
              "budget_amount": "12500", "purchase_timeframe": "this quarter", "topic": "Scanners"}
    values.update(extra)
    with db.connection_context():
        return Lead.create_lead(User.get_by_id(owner.id), **values)


def test_pages_need_login_and_login_works(client, user):
    resp = client.get("/board")
    assert resp.status_code == 302 and "/login" in resp.location
    assert client.get("/").status_code == 302
    client.refresh_token()
    bad = client.post("/login", data={"email": user.email, "password": "wrong-password", "csrf_token": client.token})
    assert bad.status_code == 401 and "Wrong email or password" in bad.get_data(as_text=True)
    good = client.post("/login?next=/board", data={"email": user.email, "password": "correct-horse-9",
                                                    "csrf_token": client.token})
    assert good.status_code == 302 and good.location.endswith("/board")
    assert client.get("/board").status_code == 200


def test_login_never_redirects_off_site(client, user):
    client.refresh_token()
    resp = client.post("/login?next=https://evil.example/x", data={"email": user.email, "password": "correct-horse-9",
                                                                    "csrf_token": client.token})
    assert resp.status_code == 302 and resp.location.endswith("/board")


def test_htmx_request_without_session_is_told_to_redirect(client):
    resp = client.get("/board", headers={"HX-Request": "true"})
    assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/login")


def test_post_without_csrf_token_is_refused(logged_in, user):
    lead = _ready_lead(user)
    resp = logged_in.client.post("/board/move", data={"record": f"lead:{lead.id}", "to": "develop"})
    assert resp.status_code == 400
    with db.connection_context():
        assert Lead.get_by_id(lead.id).status == "open"


def test_csrf_token_is_masked_per_page_and_bound_to_the_session(app, logged_in, user):
    """Pages carry different tokens (a fresh pad each) that all work; another session's token, a
    tampered token and a token in a form without a session secret are refused with 400."""
    first = logged_in.token
    second = logged_in.refresh_token("/board")
    assert first != second
    lead = _ready_lead(user)
    for token in (first, second):
        resp = logged_in.client.post("/activities", data={"record": f"lead:{lead.id}", "kind": "note",
                                                          "subject": "Called", "csrf_token": token})
        assert resp.status_code == 302, resp.status_code
    other = HtmxClient(app.test_client())
    other.login(user.email)
    foreign = other.refresh_token("/board")
    tampered = second[:-4] + ("AAAA" if not second.endswith("AAAA") else "BBBB")
    for token in (foreign, tampered, "", "not-base64!", "A" * 500):
        resp = logged_in.client.post("/board/move", data={"record": f"lead:{lead.id}", "to": "lost", "reason": "budget",
                                                          "csrf_token": token})
        assert resp.status_code == 400, token
    with db.connection_context():
        assert Lead.get_by_id(lead.id).status == "open"


def test_a_form_part_without_a_name_is_a_400_not_a_500(client):
    client.refresh_token()
    for disposition in (b'form-data', b'form-data; name="\\"'):
        body = b"--X\r\nContent-Disposition: " + disposition + b"\r\n\r\nvalue\r\n--X--\r\n"
        resp = client.client.post("/login", data=body, content_type="multipart/form-data; boundary=X",
                                  headers={"X-CSRFToken": client.token})
        assert resp.status_code == 400


def test_session_cookie_is_not_reissued_on_every_request(logged_in):
    assert "Set-Cookie" not in logged_in.get("/board").headers
    assert "Set-Cookie" not in logged_in.get("/leads").headers


def test_board_has_seven_columns_with_hooks_and_sql_totals(logged_in, user):
    _ready_lead(user, budget_amount="1000.10")
    _ready_lead(user, name="Eva", email="eva@x.example", company="Other AG", budget_amount="0.20")
    html = logged_in.get("/board").get_data(as_text=True)
    stages = re.findall(r'<section class="column[^"]*" data-stage="(\w+)"', html)
    assert stages == ["qualify", "develop", "propose", "close", "fulfill", "invoiced", "lost"]
    count, total, weighted = _count(html, "qualify")
    assert (count, total, weighted) == (2, Decimal("1000.30"), Decimal("100.03"))
    assert html.count('data-record="lead:') == 2
    assert '<meta name="csrf-token"' in html
    assert "€" in html


def test_board_fragment_for_htmx_and_vary_header(logged_in):
    full = logged_in.get("/board")
    part = logged_in.hx_get("/board")
    assert "HX-Request" in full.headers["Vary"] and "HX-Request" in part.headers["Vary"]
    assert "<html" in full.get_data(as_text=True)
    assert "<html" not in part.get_data(as_text=True) and 'id="board"' in part.get_data(as_text=True)


def test_filters_are_in_the_url_and_apply_to_totals(logged_in, user):
    _ready_lead(user, topic="Forklift fleet", company="Alpha KG", email="a@alpha.example", budget_amount="100")
    _ready_lead(user, topic="Scanner rollout", company="Beta SE", email="b@beta.example", budget_amount="300")
    html = logged_in.get("/board?q=forklift").get_data(as_text=True)
    assert _count(html, "qualify")[:2] == (1, Decimal("100.00"))
    assert 'value="forklift"' in html
    bad = logged_in.get("/board?close_from=not-a-date")
    assert bad.status_code == 200 and "Enter a date" in bad.get_data(as_text=True)


def test_columns_page_25_cards_and_load_more(logged_in, user):
    with db.connection_context():
        owner = User.get_by_id(user.id)
        for i in range(30):
            Lead.create_lead(owner, name=f"Lead {i:02d}", company=f"Co {i}", email=f"l{i}@x.example")
    html = logged_in.get("/board").get_data(as_text=True)
    assert html.count('data-record="lead:') == 25
    more = re.search(r'hx-get="(/board/column/qualify\?offset=25[^"]*)"', html)
    assert more, "load-more link missing"
    rest = logged_in.hx_get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert rest.count('data-record="lead:') == 5 and "load-more" not in rest


def test_board_query_count_does_not_grow_with_cards(app, logged_in, user):
    def queries_for_board():
        count, answer = queries_of(lambda: logged_in.get("/board"))
        assert answer.status_code == 200
        return count

    _ready_lead(user)
    with db.connection_context():
        _ready_lead(user, email="q@x.example", company="Q AG").qualify(User.get_by_id(user.id))
    few = queries_for_board()
    with db.connection_context():
        owner = User.get_by_id(user.id)
        for i in range(40):
            lead = Lead.create_lead(owner, name=f"N{i}", company=f"Firm {i}", email=f"n{i}@x.example",
                                    budget_amount="10", purchase_timeframe="this year")
            if i % 2:
                lead.qualify(owner)
    many = queries_for_board()
    assert many == few
    assert many <= 17  # session user, settings, headers, 7 columns, next activities, invoices, writable cards…


def test_move_422_names_the_missing_fields_and_writes_nothing(logged_in, user):
    lead = _ready_lead(user, budget_amount="", purchase_timeframe="")
    with db.connection_context():
        before = HistoryEvent.select().count()
    resp = logged_in.hx_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert re.findall(r'data-field="(\w+)"', html) == ["budget_amount", "purchase_timeframe"]
    with db.connection_context():
        assert HistoryEvent.select().count() == before
        assert Lead.get_by_id(lead.id).status == "open"


def test_move_dialog_submission_completes_the_move(logged_in, user):
    lead = _ready_lead(user, budget_amount="")
    resp = logged_in.hx_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1",
                                             "budget_amount": "4200", "dialog_fields": "budget_amount"})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'hx-swap-oob="delete"' in html and 'id="cards-develop"' in html
    assert 'id="head-develop"' in html and 'id="head-qualify"' in html
    with db.connection_context():
        opp = Opportunity.get(Opportunity.lead == lead.id)
        assert opp.estimated_revenue == Decimal("4200.00")


def test_bad_dialog_value_is_shown_at_the_field(logged_in, user):
    lead = _ready_lead(user, budget_amount="")
    resp = logged_in.hx_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1",
                                             "budget_amount": "1e999", "dialog_fields": "budget_amount"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert 'class="field-error" id="e-budget_amount"' in html
    with db.connection_context():
        assert Lead.get_by_id(lead.id).status == "open"


def test_a_bad_first_line_in_the_dialog_is_shown_at_the_line(logged_in, user):
    with db.connection_context():
        opp = Lead.get_by_id(_ready_lead(user).id).qualify(User.get_by_id(user.id))
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "propose",
                                             "version": str(opp.version), "estimated_close_date": "2031-05-30",
                                             "line_description": "Set-up", "line_unit_price": "abc",
                                             "dialog_fields": "line,estimated_close_date"})
    assert resp.status_code == 422
    error = re.search(r'class="field-error" id="e-line">([^<]*)<', resp.get_data(as_text=True))
    assert error and error.group(1).startswith("Unit price: Enter a number")


def test_stale_move_is_409_and_puts_the_card_back(logged_in, user):
    lead = _ready_lead(user)
    with db.connection_context():
        Lead.get_by_id(lead.id).update_fields(User.get_by_id(user.id), topic="Changed behind your back")
    resp = logged_in.hx_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "changed by Sam Seller" in html
    assert 'id="cards-qualify"' in html and f'data-record="lead:{lead.id}"' in html
    with db.connection_context():
        assert Lead.get_by_id(lead.id).status == "open"


def test_repeated_move_is_idempotent(logged_in, user):
    lead = _ready_lead(user)
    first = logged_in.hx_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1"})
    assert first.status_code == 200
    with db.connection_context():
        events = HistoryEvent.select().count()
    again = logged_in.hx_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1"})
    assert again.status_code == 200 and "Already in Develop" in again.get_data(as_text=True)
    with db.connection_context():
        assert HistoryEvent.select().count() == events
        assert Opportunity.select().count() == 1


def test_move_into_qualify_is_refused_with_reason(logged_in, user):
    lead = _ready_lead(user)
    with db.connection_context():
        opp = Lead.get_by_id(lead.id).qualify(User.get_by_id(user.id))
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "qualify"})
    assert resp.status_code == 409 and "Nothing moves back into Qualify" in resp.get_data(as_text=True)


@pytest.mark.parametrize("record,to,status", [
    ("lead:999999", "develop", 404),
    ("lead:abc", "develop", 422),
    ("invoice:1", "develop", 422),
    ("", "develop", 422),
    ("lead:{id}", "nowhere", 422),
    ("lead:{id}", "", 422),
    ("lead:" + "9" * 40, "develop", 422),
    ("lead:²", "develop", 422),
])
def test_bad_move_requests_are_4xx(logged_in, user, record, to, status):
    lead = _ready_lead(user)
    resp = logged_in.hx_post("/board/move", {"record": record.format(id=lead.id), "to": to})
    assert resp.status_code == status
    with db.connection_context():
        assert Lead.get_by_id(lead.id).status == "open"


def test_move_without_javascript_redirects_and_flashes(logged_in, user):
    lead = _ready_lead(user)
    resp = logged_in.form_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1"})
    assert resp.status_code == 302
    page = logged_in.get(resp.location).get_data(as_text=True)
    assert "Moved to Develop" in page


def test_move_dialog_without_javascript_is_a_page(logged_in, user):
    lead = _ready_lead(user, purchase_timeframe="")
    resp = logged_in.form_post("/board/move", {"record": f"lead:{lead.id}", "to": "develop", "version": "1"})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "<html" in html and 'name="purchase_timeframe"' in html


def test_undo_is_offered_and_is_a_recorded_move(logged_in, user):
    lead = _ready_lead(user)
    with db.connection_context():
        actor = User.get_by_id(user.id)
        opp = Lead.get_by_id(lead.id).qualify(actor)
        product = Product.create_product(actor, sku="S-1", name="Scanner", list_price="100")
        opp.add_line(actor, product=product.id)
        opp = Opportunity.get_by_id(opp.id)
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "propose",
                                             "version": str(opp.version)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Undo" in html
    undo = dict(re.findall(r'<input type="hidden" name="(record|to|version)" value="([^"]*)">', html.split("toast-undo")[1]))
    assert undo["to"] == "develop"
    back = logged_in.hx_post("/board/move", undo)
    assert back.status_code == 200
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).column == "develop"
        moves = HistoryEvent.select().where((HistoryEvent.record_type == "opportunity") & (HistoryEvent.action == "move"))
        assert [(e.from_stage, e.to_stage) for e in moves.order_by(HistoryEvent.id)] == [("develop", "propose"),
                                                                                          ("propose", "develop")]


def _card_li(html, key):
    return re.search(rf'<li class="card[^"]*" id="card-{key}".*?</li>', html, re.S).group(0)


def test_card_answered_by_a_move_is_the_card_the_board_shows(logged_in, user):
    """The moved card is rendered from the record just written (not read again): it must be, byte for
    byte, the card the board loads — here after a dialog that set the customer and added a line."""
    with db.connection_context():
        actor = User.get_by_id(user.id)
        opp = Lead.get_by_id(_ready_lead(user).id).qualify(actor)
        Opportunity.update(account=None, contact=None).where(Opportunity.id == opp.id).execute()
        other = Account.create_account(actor, name="Nordlicht Logistik AG")
        opp = Opportunity.get_by_id(opp.id)
    resp = logged_in.hx_post("/board/move", {
        "record": f"opportunity:{opp.id}", "to": "propose", "version": str(opp.version),
        "account": str(other.id), "estimated_close_date": "2031-05-30", "line_description": "Set-up",
        "line_quantity": "3", "line_unit_price": "250", "line_tax_rate": "19",
        "dialog_fields": "customer,line,estimated_close_date"})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    moved = _card_li(resp.get_data(as_text=True), f"opportunity-{opp.id}")
    assert "Nordlicht Logistik AG" in moved and 'datetime="2031-05-30"' in moved and "Quote PDF" in moved
    board = logged_in.hx_get(f"/board/card/opportunity/{opp.id}").get_data(as_text=True)
    strip = lambda html: re.sub(r'name="csrf_token" value="[^"]*"', "", html)  # noqa: E731 (masked per request)
    assert strip(moved) == strip(_card_li(board, f"opportunity-{opp.id}"))


def test_cards_show_the_earliest_open_dated_activity_also_after_a_move(logged_in, user):
    """A card's next activity is the open one with the earliest due date: not a done one, not one
    without a date, not one of another kind of record with the same id; a moved card keeps it."""
    with db.connection_context():
        actor = User.get_by_id(user.id)
        opp = Lead.get_by_id(_ready_lead(user, email="o@x.example", company="O AG").id).qualify(actor)
        lead = Lead.get_by_id(_ready_lead(user).id)
        product = Product.create_product(actor, sku="N-1", name="Node", list_price="10")
        opp.add_line(actor, product=product.id)
        for record in (lead, opp):
            Activity.add(actor, record, kind="call", subject="Later", due_date="2031-03-20")
            Activity.add(actor, record, kind="meeting", subject="Soonest", due_date="2031-03-05")
            Activity.add(actor, record, kind="task", subject="Done already", due_date="2031-03-01", done="on")
            Activity.add(actor, record, kind="email", subject="Undated")
        twin = Lead.get_or_none(Lead.id == opp.id)  # the lead whose id is the deal's (its own, qualified)
        if twin is not None and twin.id != lead.id:
            Activity.add(actor, twin, kind="task", subject="Other record", due_date="2031-02-01")
        opp = Opportunity.get_by_id(opp.id)
    board = logged_in.get("/board").get_data(as_text=True)
    for key in (f"lead-{lead.id}", f"opportunity-{opp.id}"):
        card = _card_li(board, key)
        assert "meeting · 5 Mar 2031" in card and 'title="Next: Soonest"' in card, card
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "propose",
                                             "version": str(opp.version)})
    assert resp.status_code == 200
    assert "meeting · 5 Mar 2031" in _card_li(resp.get_data(as_text=True), f"opportunity-{opp.id}")


def test_panel_opens_as_fragment_page_and_board_param(logged_in, user):
    lead = _ready_lead(user)
    frag = logged_in.hx_get(f"/leads/{lead.id}")
    assert frag.status_code == 200 and 'id="panel"' in frag.get_data(as_text=True)
    assert "<html" not in frag.get_data(as_text=True)
    page = logged_in.get(f"/leads/{lead.id}")
    assert "<html" in page.get_data(as_text=True) and "Dana Fischer" in page.get_data(as_text=True)
    board = logged_in.get(f"/board?panel=lead:{lead.id}").get_data(as_text=True)
    assert 'id="panel"' in board and "Dana Fischer" in board
    assert logged_in.get("/leads/999999").status_code == 404
    assert logged_in.get("/opportunities/999999").status_code == 404


def test_user_text_is_escaped_everywhere(logged_in, user):
    lead = _ready_lead(user, name="<script>alert(1)</script>", topic='<img src=x onerror=alert(1)> hx-get="/x"')
    for path in ("/board", f"/leads/{lead.id}", f"/board?panel=lead:{lead.id}"):
        html = logged_in.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html


def test_quick_create_lead_lands_in_qualify(logged_in, user):
    resp = logged_in.hx_post("/leads", {"name": "Ola Nordmann", "company": "Fjord AS", "email": "ola@fjord.example",
                                        "budget_amount": "2500"})
    assert resp.status_code == 201
    html = resp.get_data(as_text=True)
    assert 'id="cards-qualify" hx-swap-oob="afterbegin"' in html and "Ola Nordmann" in html
    assert 'id="head-qualify"' in html and 'id="quick-create"' in html
    with db.connection_context():
        lead = Lead.get(Lead.email == "ola@fjord.example")
        assert lead.budget_amount == Decimal("2500.00") and lead.owner_id == user.id
        assert HistoryEvent.select().where((HistoryEvent.record_type == "lead") & (HistoryEvent.record_id == lead.id)).count() == 1


@pytest.mark.parametrize("data,field", [
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "Ok", "email": "not-an-email"}, "email"),
    ({"name": "Ok", "budget_amount": "NaN"}, "budget_amount"),
    ({"name": "Ok", "budget_amount": "-5"}, "budget_amount"),
    ({"name": "Ok", "budget_amount": "12,3,4"}, "budget_amount"),
    ({"name": "Ok", "budget_amount": "9" * 40}, "budget_amount"),
])
def test_quick_create_refuses_bad_input_at_the_field(logged_in, data, field):
    resp = logged_in.hx_post("/leads", data)
    assert resp.status_code == 422
    assert f'id="qc-e-{field}"' in resp.get_data(as_text=True)
    with db.connection_context():
        assert Lead.select().count() == 0


def test_skip_whose_first_step_is_unmet_is_refused_with_a_reason(logged_in, user):
    lead = _ready_lead(user)
    with db.connection_context():
        opp = Lead.get_by_id(lead.id).qualify(User.get_by_id(user.id))
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "close",
                                             "version": str(opp.version)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Cannot skip to Close: Propose comes first" in html and "product line" in html
    assert "<dialog" not in html and 'id="cards-develop"' in html


def test_dialog_carries_earlier_answers_to_the_next_question(logged_in, user):
    import datetime
    from models import Quote
    lead = _ready_lead(user)
    with db.connection_context():
        actor = User.get_by_id(user.id)
        opp = Lead.get_by_id(lead.id).qualify(actor)
        product = Product.create_product(actor, sku="S-2", name="Scanner", list_price="100")
        opp.add_line(actor, product=product.id)
        opp.move_to(actor, "propose")
        Quote.update(valid_until=datetime.date(2001, 1, 1)).execute()
        opp = Opportunity.get_by_id(opp.id)
    first = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "close",
                                              "version": str(opp.version)})
    assert first.status_code == 422 and 'data-field="activate_quote"' in first.get_data(as_text=True)
    second = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "close",
                                               "version": str(opp.version), "activate_quote": "1",
                                               "dialog_fields": "activate_quote"})
    html = second.get_data(as_text=True)
    assert second.status_code == 422 and 'data-field="valid_until"' in html
    assert '<input type="hidden" name="activate_quote" value="1">' in html
    future = (datetime.date.today() + datetime.timedelta(days=20)).isoformat()
    third = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "close",
                                              "version": str(opp.version), "activate_quote": "1",
                                              "valid_until": future, "dialog_fields": "valid_until"})
    assert third.status_code == 200
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).column == "close"


def test_invoicing_without_company_data_is_refused_with_every_reason_not_a_500(logged_in, user):
    lead = _ready_lead(user)
    with db.connection_context():
        actor = User.get_by_id(user.id)
        opp = Lead.get_by_id(lead.id).qualify(actor)
        product = Product.create_product(actor, sku="W-1", name="Widget", list_price="10")
        opp.add_line(actor, product=product.id)
        opp.move_to(actor, "close", activate_quote="1")
        opp.move_to(actor, "fulfill", actual_revenue="10", actual_close_date=str(opp.win_defaults()["actual_close_date"]))
        opp = Opportunity.get_by_id(opp.id)
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "invoiced",
                                             "version": str(opp.version)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "<dialog" not in html and "settings" in html.lower()
    with db.connection_context():
        fresh = Opportunity.get_by_id(opp.id)
        assert fresh.column == "fulfill" and fresh.version == opp.version


def test_column_headers_are_summed_from_their_covering_index_once_statistics_exist(app, logged_in, user, tmp_path):
    """SQLite picks indexes by the statistics the app refreshes (at start, after imports, hourly): with
    them, the board's header sums read the covering index of migration 0006, not every deal's row."""
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("PostgreSQL keeps its statistics itself (autovacuum)")
    from models.base import refresh_statistics
    with db.connection_context():
        owner = User.get_by_id(user.id)
        rows = [{"topic": f"Deal {i}", "stage": "develop", "column": "develop", "status": "open", "probability": 20,
                 "revenue_mode": "entered", "estimated_revenue": Decimal("100.00"), "owner": owner.id}
                for i in range(300)]
        Opportunity.insert_many(rows).execute()
    assert refresh_statistics(force=True) is True
    captured = []
    original = db.obj.execute_sql

    def spy(sql, params=None, *args, **kwargs):
        if 'COUNT("t1"."id") AS "n"' in sql and '"opportunity"' in sql:
            captured.append((sql, params))
        return original(sql, params, *args, **kwargs)
    db.obj.execute_sql = spy
    try:
        page = logged_in.get("/board").get_data(as_text=True)
    finally:
        db.obj.execute_sql = original
    assert 'data-count="300"' in page
    sql, params = captured[0]
    with db.connection_context():
        plan = " ".join(str(row[-1]) for row in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall())
        assert db.execute_sql("SELECT count(*) FROM sqlite_stat1 WHERE idx = 'opportunity_board_stats'").fetchone()[0]
    assert "COVERING INDEX opportunity_board_stats" in plan, plan
