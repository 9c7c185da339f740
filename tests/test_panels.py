"""HTTP tests for the lead and opportunity panels: inline fields, line editor, activities, lists."""
from decimal import Decimal

import pytest

from models import Activity, HistoryEvent, Lead, Opportunity, OpportunityLine, Product, User, db


def complete_invoicing_data(opp):
    """The company block and the customer's address that an e-invoice needs."""
    from models import Account, Settings
    settings = Settings.load()
    settings.company_name, settings.address, settings.vat_id = "Seller GmbH", "Hauptstr. 1\n70173 Stuttgart\nDE", "DE123456789"
    settings.save()
    Account.update(street="Hafenweg 2", postal_code="20457", city="Hamburg", country="DE").where(
        Account.id == opp.account_id).execute()


def _actor(user):
    return User.get_by_id(user.id)


def _lead(user, **extra):
    values = {"name": "Dana Fischer", "company": "Nordwind GmbH", "email": "dana@nordwind.example",
              "budget_amount": "12500", "purchase_timeframe": "this quarter", "topic": "Scanners"}
    values.update(extra)
    with db.connection_context():
        return Lead.create_lead(_actor(user), **values)


def _deal(user):
    lead = _lead(user)
    with db.connection_context():
        actor = _actor(user)
        opp = Lead.get_by_id(lead.id).qualify(actor)
        product = Product.create_product(actor, sku="SC-1", name="Scanner", list_price="199.90", tax_rate="19")
        opp.add_line(actor, product=product.id, quantity="2")
        return Opportunity.get_by_id(opp.id), product


def _events(kind, record_id):
    with db.connection_context():
        return HistoryEvent.select().where((HistoryEvent.record_type == kind) & (HistoryEvent.record_id == record_id)).count()


def test_inline_field_edit_round_trip(logged_in, user):
    lead = _lead(user)
    edit = logged_in.hx_get(f"/leads/{lead.id}/fields/email/edit")
    assert edit.status_code == 200 and 'name="email"' in edit.get_data(as_text=True)
    saved = logged_in.hx_post(f"/leads/{lead.id}/fields/email", {"email": "DANA@new.example", "version": "1"})
    html = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "dana@new.example" in html
    assert f'id="version-lead-{lead.id}"' in html and 'value="2"' in html
    with db.connection_context():
        assert Lead.get_by_id(lead.id).email == "dana@new.example"
    assert _events("lead", lead.id) == 2
    shown = logged_in.hx_get(f"/leads/{lead.id}/fields/email")
    assert shown.status_code == 200 and "ifield-value" in shown.get_data(as_text=True)


@pytest.mark.parametrize("field,value,message", [
    ("name", "", "required"),
    ("name", "x" * 201, "At most 200"),
    ("email", "nope", "valid email"),
    ("budget_amount", "9" * 16, "too large"),
    ("budget_amount", "1e999", "such as 1250.50"),
    ("budget_amount", "NaN", "such as 1250.50"),
    ("budget_amount", "-1", "at least 0"),
    ("purchase_timeframe", "someday", "Choose one of"),
    ("owner", "999999", "Unknown user"),
    ("owner", "abc", "Unknown user"),
])
def test_inline_field_refuses_bad_input_at_the_field(logged_in, user, field, value, message):
    lead = _lead(user)
    resp = logged_in.hx_post(f"/leads/{lead.id}/fields/{field}", {field: value, "version": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in html and f'id="field-lead-{lead.id}-{field}-error"' in html
    with db.connection_context():
        assert Lead.get_by_id(lead.id).version == 1
    assert _events("lead", lead.id) == 1


def test_inline_edit_on_a_stale_version_is_409_with_the_fresh_value(logged_in, user):
    lead = _lead(user)
    with db.connection_context():
        Lead.get_by_id(lead.id).update_fields(_actor(user), topic="Changed elsewhere")
    resp = logged_in.hx_post(f"/leads/{lead.id}/fields/topic", {"topic": "Mine", "version": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "Changed elsewhere" in html and "changed by Sam Seller" in html
    with db.connection_context():
        assert Lead.get_by_id(lead.id).topic == "Changed elsewhere"


def test_unknown_field_or_record_is_404(logged_in, user):
    lead = _lead(user)
    assert logged_in.hx_get(f"/leads/{lead.id}/fields/password/edit").status_code == 404
    assert logged_in.hx_post(f"/leads/{lead.id}/fields/status", {"status": "qualified"}).status_code == 404
    assert logged_in.hx_get("/leads/999999/fields/name/edit").status_code == 404


def test_inline_edit_without_javascript(logged_in, user):
    lead = _lead(user)
    page = logged_in.get(f"/leads/{lead.id}/fields/topic/edit")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    resp = logged_in.form_post(f"/leads/{lead.id}/fields/topic", {"topic": "Handhelds", "version": "1"})
    assert resp.status_code == 302
    with db.connection_context():
        assert Lead.get_by_id(lead.id).topic == "Handhelds"


def test_line_editor_add_update_reorder_remove_with_live_totals(logged_in, user):
    opp, product = _deal(user)
    base = f"/opportunities/{opp.id}/lines"
    version = opp.version
    added = logged_in.hx_post(base, {"description": "Installation", "quantity": "3", "unit_price": "80",
                                     "tax_rate": "19", "version": str(version)})
    html = added.get_data(as_text=True)
    assert added.status_code == 200
    assert 'data-net="639.80"' in html and 'data-gross="761.36"' in html
    with db.connection_context():
        lines = Opportunity.get_by_id(opp.id).line_rows()
        assert [l.description for l in lines] == ["Scanner", "Installation"]
        fresh = Opportunity.get_by_id(opp.id)
        assert fresh.estimated_revenue == Decimal("12500.00")
    version += 1
    changed = logged_in.hx_post(f"{base}/{lines[1].id}", {"quantity": "4", "discount_pct": "10", "version": str(version)})
    assert changed.status_code == 200 and 'data-net="687.80"' in changed.get_data(as_text=True)
    version += 1
    moved = logged_in.hx_post(f"{base}/{lines[1].id}/up", {"version": str(version)})
    assert moved.status_code == 200
    with db.connection_context():
        assert [l.description for l in Opportunity.get_by_id(opp.id).line_rows()] == ["Installation", "Scanner"]
    version += 1
    removed = logged_in.hx_post(f"{base}/{lines[0].id}/delete", {"version": str(version)})
    assert removed.status_code == 200 and 'data-net="288.00"' in removed.get_data(as_text=True)
    assert _events("opportunity", opp.id) == 1 + 4


def test_line_editor_asks_a_zero_rate_line_for_its_exemption_and_keeps_it_to_its_rate(logged_in, user):
    opp, _ = _deal(user)
    base = f"/opportunities/{opp.id}/lines"
    html = logged_in.hx_get(f"/opportunities/{opp.id}").get_data(as_text=True)
    assert 'name="tax_exemption"' not in html  # the scanner is taxed at 19 %
    added = logged_in.hx_post(base, {"description": "Exam fee", "unit_price": "250", "tax_rate": "0",
                                     "version": str(opp.version)})
    assert added.status_code == 200 and added.get_data(as_text=True).count('name="tax_exemption"') == 1
    assert added.get_data(as_text=True).count('class="cell-supply"') == 1  # goods or services: the VAT of a sale abroad
    with db.connection_context():
        line = Opportunity.get_by_id(opp.id).line_rows()[-1]
    form = {"description": "Exam fee", "quantity": "1", "unit_price": "250", "discount_pct": "0"}
    saved = logged_in.hx_post(f"{base}/{line.id}", dict(form, tax_rate="0", tax_exemption="§ 4 Nr. 21 UStG",
                                                        supply="goods", version=str(opp.version + 1)))
    assert saved.status_code == 200 and 'value="§ 4 Nr. 21 UStG"' in saved.get_data(as_text=True)
    assert "Tax 0 % on € 250.00 (€ 250.00 of it VAT exempt)" in saved.get_data(as_text=True).replace("\u00a0", " ")
    assert '<option value="goods" selected>' in saved.get_data(as_text=True)
    # the whole row is sent again with a raised rate: the exemption ends, and its input goes
    raised = logged_in.hx_post(f"{base}/{line.id}", dict(form, tax_rate="19", tax_exemption="§ 4 Nr. 21 UStG",
                                                         version=str(opp.version + 2)))
    assert raised.status_code == 200 and 'name="tax_exemption"' not in raised.get_data(as_text=True)
    with db.connection_context():
        assert OpportunityLine.get_by_id(line.id).tax_exemption == ""
    refused = logged_in.hx_post(f"{base}/{line.id}", dict(form, tax_rate="19", tax_exemption="§ 4 Nr. 14 UStG",
                                                          version=str(opp.version + 3)))
    assert refused.status_code == 422 and "Only an item without VAT can be exempt" in refused.get_data(as_text=True)


def test_free_text_line_is_added_as_goods_or_service(logged_in, user):
    opp, _ = _deal(user)
    html = logged_in.hx_get(f"/opportunities/{opp.id}").get_data(as_text=True)
    assert '<select name="supply" aria-label="Goods or service"' in html  # the free-text form asks
    added = logged_in.hx_post(f"/opportunities/{opp.id}/lines", {"description": "Label printer", "unit_price": "300",
                                                                  "tax_rate": "0", "supply": "goods",
                                                                  "version": str(opp.version)})
    assert added.status_code == 200 and '<option value="goods" selected>' in added.get_data(as_text=True)
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).line_rows()[-1].supply == "goods"
    refused = logged_in.hx_post(f"/opportunities/{opp.id}/lines", {"description": "Cable", "unit_price": "3",
                                                                    "supply": "hardware", "version": str(opp.version + 1)})
    assert refused.status_code == 422 and "Supply:" in refused.get_data(as_text=True)


@pytest.mark.parametrize("data,field", [
    ({"description": "", "unit_price": "5"}, "Description"),
    ({"description": "x", "unit_price": "abc"}, "Unit price"),
    ({"description": "x", "unit_price": "5", "quantity": "0"}, "Quantity"),
    ({"description": "x", "unit_price": "5", "quantity": "-2"}, "Quantity"),
    ({"description": "x", "unit_price": "5", "discount_pct": "101"}, "Discount pct"),
    ({"description": "x", "unit_price": "5", "tax_rate": "-1"}, "Tax rate"),
    ({"product": "999999", "quantity": "1"}, "Product"),
    ({"description": "x", "quantity": "1000000000", "unit_price": "1000000000000"}, "Quantity"),
])
def test_line_editor_refuses_bad_lines(logged_in, user, data, field):
    opp, _ = _deal(user)
    resp = logged_in.hx_post(f"/opportunities/{opp.id}/lines", dict(data, version=str(opp.version)))
    assert resp.status_code == 422 and field in resp.get_data(as_text=True)
    with db.connection_context():
        assert OpportunityLine.select().count() == 1
        assert Opportunity.get_by_id(opp.id).version == opp.version


def test_line_edit_on_stale_version_is_409(logged_in, user):
    opp, _ = _deal(user)
    resp = logged_in.hx_post(f"/opportunities/{opp.id}/lines", {"description": "x", "unit_price": "1", "version": "1"})
    assert resp.status_code == 409
    with db.connection_context():
        assert OpportunityLine.select().count() == 1


def test_lines_of_a_won_deal_are_read_only(logged_in, user):
    opp, _ = _deal(user)
    with db.connection_context():
        actor = _actor(user)
        opp.move_to(actor, "close", activate_quote="1")
        opp.move_to(actor, "fulfill", actual_revenue="399.80", actual_close_date=str(opp.win_defaults()["actual_close_date"]))
        opp = Opportunity.get_by_id(opp.id)
    panel = logged_in.hx_get(f"/opportunities/{opp.id}").get_data(as_text=True)
    assert "cannot change" in panel and 'name="unit_price"' not in panel
    resp = logged_in.hx_post(f"/opportunities/{opp.id}/lines", {"description": "x", "unit_price": "1",
                                                                "version": str(opp.version)})
    assert resp.status_code == 409


def test_product_search_as_you_type(logged_in, user):
    opp, _ = _deal(user)
    with db.connection_context():
        Product.create_product(_actor(user), sku="LIC-9", name="Licence pack", list_price="49")
    html = logged_in.hx_get(f"/products/search?target=opportunity:{opp.id}&q=licen").get_data(as_text=True)
    assert "Licence pack" in html and "Scanner" not in html
    assert logged_in.hx_get("/products/search?target=bogus:1&q=x").status_code == 400


def test_activity_logging_updates_timeline_and_next_activity(logged_in, user):
    opp, _ = _deal(user)
    resp = logged_in.hx_post("/activities", {"record": f"opportunity:{opp.id}", "kind": "task",
                                             "subject": "Call back about delivery", "due_date": "2030-01-15"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 201 and "Call back about delivery" in html
    assert f'id="timeline-opportunity-{opp.id}"' in html
    board = logged_in.get("/board").get_data(as_text=True)
    assert "task · 15 Jan 2030" in board
    with db.connection_context():
        activity = Activity.get()
    done = logged_in.hx_post(f"/activities/{activity.id}/done")
    assert done.status_code == 200
    with db.connection_context():
        assert Activity.get_by_id(activity.id).done
    assert "task · 15 Jan 2030" not in logged_in.get("/board").get_data(as_text=True)


@pytest.mark.parametrize("data", [
    {"kind": "task", "subject": ""},
    {"kind": "party", "subject": "x"},
    {"kind": "task", "subject": "x", "due_date": "31/12/2030"},
    {"kind": "note", "subject": "x" * 201},
])
def test_activity_bad_input_is_422_and_writes_nothing(logged_in, user, data):
    lead = _lead(user)
    resp = logged_in.hx_post("/activities", dict(data, record=f"lead:{lead.id}"))
    assert resp.status_code == 422 and "field-error" in resp.get_data(as_text=True)
    with db.connection_context():
        assert Activity.select().count() == 0


def test_opportunity_timeline_includes_its_lead(logged_in, user):
    opp, _ = _deal(user)
    with db.connection_context():
        Activity.add(_actor(user), Lead.get_by_id(opp.lead_id), kind="note", subject="Met at the trade fair")
    html = logged_in.hx_get(f"/opportunities/{opp.id}").get_data(as_text=True)
    assert "Met at the trade fair" in html and "qualified the lead" in html


def test_lead_list_filters_sort_and_paging(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        for i in range(60):
            Lead.create_lead(actor, name=f"Person {i:02d}", company=f"Firm {i}", email=f"p{i}@x.example",
                             rating="hot" if i % 3 == 0 else "cold", budget_amount=str(i * 10))
    first = logged_in.get("/leads?sort=name").get_data(as_text=True)
    assert first.count('data-record="lead:') == 50 and "1–50 of 60" in first
    assert first.index("Person 00") < first.index("Person 01")
    second = logged_in.hx_get("/leads?sort=name&page=2").get_data(as_text=True)
    assert second.count('data-record="lead:') == 10 and "<html" not in second
    hot = logged_in.get("/leads?rating=hot").get_data(as_text=True)
    assert hot.count('data-record="lead:') == 20
    by_budget = logged_in.get("/leads?sort=-budget").get_data(as_text=True)
    assert by_budget.index("Person 59") < by_budget.index("Person 58")
    assert logged_in.get("/leads?sort=bogus&page=abc").status_code == 200


def test_opportunity_list_filters(logged_in, user):
    opp, _ = _deal(user)
    html = logged_in.get("/opportunities?q=nordwind").get_data(as_text=True)
    assert f'data-record="opportunity:{opp.id}"' in html
    assert 'data-record="opportunity:' not in logged_in.get("/opportunities?status=won").get_data(as_text=True)
    bad = logged_in.get("/opportunities?close_from=2030-13-45")
    assert bad.status_code == 200 and "Enter a date" in bad.get_data(as_text=True)


@pytest.mark.parametrize("field,value,message", [
    ("topic", "", "required"),
    ("topic", "y" * 201, "At most 200"),
    ("estimated_revenue", "12,3,4", "Enter a number"),
    ("estimated_revenue", "9" * 40, "too long"),
    ("estimated_revenue", "-0.01", "at least 0"),
    ("probability", "101", "from 0 to 100"),
    ("probability", "1.5", "whole number"),
    ("estimated_close_date", "1999-12-31", "between"),
    ("estimated_close_date", "2101-01-01", "between"),
    ("estimated_close_date", "tomorrow", "YYYY-MM-DD"),
    ("account", "999999", "Unknown account"),
    ("contact", "lead:1", "Unknown contact"),
    ("revenue_mode", "guessed", "Choose one of"),
])
def test_opportunity_fields_refuse_bad_input(logged_in, user, field, value, message):
    opp, _ = _deal(user)
    resp = logged_in.hx_post(f"/opportunities/{opp.id}/fields/{field}", {field: value, "version": str(opp.version)})
    assert resp.status_code == 422 and message in resp.get_data(as_text=True)
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).version == opp.version


def test_switching_revenue_to_calculated_follows_the_lines(logged_in, user):
    opp, _ = _deal(user)
    resp = logged_in.hx_post(f"/opportunities/{opp.id}/fields/revenue_mode",
                             {"revenue_mode": "calculated", "version": str(opp.version)})
    assert resp.status_code == 200
    with db.connection_context():
        assert Opportunity.get_by_id(opp.id).estimated_revenue == Decimal("399.80")


def _state(user, state):
    """A card in a given state, built through the rules."""
    opp, _ = _deal(user)
    with db.connection_context():
        actor = _actor(user)
        if state in ("propose", "close", "fulfill", "invoiced"):
            opp.move_to(actor, "propose")
        if state in ("close", "fulfill", "invoiced"):
            opp.move_to(actor, "close", activate_quote="1")
        if state in ("fulfill", "invoiced"):
            opp.move_to(actor, "fulfill", actual_revenue="399.80",
                        actual_close_date=str(opp.win_defaults()["actual_close_date"]))
        if state in ("fulfill", "invoiced"):
            complete_invoicing_data(opp)
        if state == "invoiced":
            opp.move_to(actor, "invoiced")
        if state == "lost":
            opp.move_to(actor, "lost", close_reason="price")
        return Opportunity.get_by_id(opp.id)


@pytest.mark.parametrize("state,target,status", [
    ("develop", "propose", 200), ("develop", "close", 422), ("develop", "fulfill", 422), ("develop", "lost", 422),
    ("develop", "qualify", 409), ("develop", "invoiced", 422),
    ("propose", "develop", 200), ("propose", "close", 422), ("propose", "fulfill", 422),
    ("close", "propose", 200), ("close", "fulfill", 422), ("close", "develop", 200),
    ("fulfill", "invoiced", 200), ("fulfill", "close", 409), ("fulfill", "lost", 409),
    ("invoiced", "fulfill", 409), ("invoiced", "develop", 409),
    ("lost", "develop", 200), ("lost", "propose", 409), ("lost", "qualify", 409),
])
def test_panel_actions_allowed_and_refused_by_state(logged_in, user, state, target, status):
    opp = _state(user, state)
    with db.connection_context():
        before = (opp.version, HistoryEvent.select().count())
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": target,
                                             "version": str(opp.version), "panel": "1"})
    assert resp.status_code == status, resp.get_data(as_text=True)[:300]
    with db.connection_context():
        fresh = Opportunity.get_by_id(opp.id)
        if status == 200:
            assert fresh.column == target or (state == "lost" and fresh.column == "develop")
            assert 'id="panel"' in resp.get_data(as_text=True)
        else:
            assert (fresh.version, HistoryEvent.select().count()) == before


def test_closed_deal_figures_cannot_be_changed_even_by_a_crafted_post(logged_in, user):
    opp = _state(user, "lost")
    for field, value in (("probability", "90"), ("estimated_revenue", "999999")):
        resp = logged_in.hx_post(f"/opportunities/{opp.id}/fields/{field}", {field: value, "version": str(opp.version)})
        assert resp.status_code == 409
    with db.connection_context():
        fresh = Opportunity.get_by_id(opp.id)
        assert (fresh.probability, fresh.version) == (0, opp.version)
        from models import NotAllowed
        with pytest.raises(NotAllowed):
            fresh.update_fields(_actor(user), probability="50")
    ok = logged_in.hx_post(f"/opportunities/{opp.id}/fields/competitor", {"competitor": "Acme", "version": str(opp.version)})
    assert ok.status_code == 200


def test_blank_description_on_a_line_is_refused(logged_in, user):
    opp, _ = _deal(user)
    with db.connection_context():
        line = Opportunity.get_by_id(opp.id).line_rows()[0]
    resp = logged_in.hx_post(f"/opportunities/{opp.id}/lines/{line.id}", {"description": "", "version": str(opp.version)})
    assert resp.status_code == 422 and "describe the item" in resp.get_data(as_text=True)
    with db.connection_context():
        assert OpportunityLine.get_by_id(line.id).description == "Scanner"


def test_no_javascript_line_error_is_shown_after_the_redirect(logged_in, user):
    opp, _ = _deal(user)
    resp = logged_in.form_post(f"/opportunities/{opp.id}/lines", {"description": "x", "unit_price": "abc",
                                                                   "version": str(opp.version)})
    assert resp.status_code == 302
    assert "The line was not saved" in logged_in.get(resp.location).get_data(as_text=True)


def test_deal_whose_invoice_was_canceled_can_be_invoiced_again_from_the_board(logged_in, user):
    from models import Invoice
    opp = _state(user, "invoiced")
    with db.connection_context():
        invoice = Invoice.get(Invoice.opportunity == opp.id)
        invoice.cancel(_actor(user), reason="Wrong address")
        opp = Opportunity.get_by_id(opp.id)
        assert opp.column == "fulfill"
    resp = logged_in.hx_post("/board/move", {"record": f"opportunity:{opp.id}", "to": "invoiced", "version": str(opp.version)})
    assert resp.status_code == 200
    with db.connection_context():
        numbers = [i.number for i in Invoice.select().where(Invoice.opportunity == opp.id).order_by(Invoice.id)]
        assert len(numbers) == 2 and numbers[1].endswith("00002")
        assert Opportunity.get_by_id(opp.id).column == "invoiced"


@pytest.mark.parametrize("owner", ["99999999999999999999", "²", "-1", "1e3"])
def test_odd_owner_filters_are_not_a_500(logged_in, owner):
    assert logged_in.get(f"/board?owner={owner}").status_code == 200
    assert logged_in.hx_get(f"/board/column/develop?owner={owner}").status_code == 200


def test_lost_column_pages_show_every_card_once(logged_in, user):
    import re as _re
    with db.connection_context():
        actor = _actor(user)
        for i in range(30):
            lead = Lead.create_lead(actor, name=f"L{i}", company=f"Co {i}", email=f"l{i}@x.example",
                                    budget_amount="10", purchase_timeframe="this year")
            lead.qualify(actor).move_to(actor, "lost", close_reason="price")
        for i in range(5):
            Lead.create_lead(actor, name=f"D{i}", company=f"Dq {i}", email=f"d{i}@x.example").disqualify(actor, reason="lost")
    seen = []
    offset = 0
    while True:
        html = logged_in.hx_get(f"/board/column/lost?offset={offset}").get_data(as_text=True)
        cards = _re.findall(r'data-record="(\w+:\d+)"', html)
        seen += cards
        if "load-more" not in html:
            break
        offset += len(cards)
    assert len(seen) == 35 and len(set(seen)) == 35
