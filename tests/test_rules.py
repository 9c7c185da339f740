"""Stage rules and lifecycle methods (DESIGN.md §2): what each move does, and that a refused one changes nothing."""
import datetime
from decimal import Decimal

import pytest

from builders import (LINE, SECOND_LINE, events, fresh, line_values, make_closing, make_draft_invoice, make_lead,
                      make_opportunity, make_proposed, make_won_deal, snapshot, world_counts)
from models import (Account, Contact, Invoice, Lead, Move, NotAllowed, Opportunity, Order, Product, Quote, RuleNotMet,
                    StaleVersion, ValidationError, db)
from models.base import today

TODAY = today()
YESTERDAY = TODAY - datetime.timedelta(days=1)
TOMORROW = TODAY + datetime.timedelta(days=1)
NEXT_MONTH = TODAY + datetime.timedelta(days=30)
WIN = {"actual_revenue": "1800.00", "actual_close_date": TODAY.isoformat()}
DIALOG_LINE = {"line_description": "Setup fee", "line_unit_price": "500.00", "line_tax_rate": "19"}


# ----- lead: qualify ---------------------------------------------------------------------------------------

COMPLETE_LEAD = {"name": "Lena Lead", "company": "Acme GmbH", "email": "lena@example.com", "phone": "",
                 "budget_amount": Decimal("5000.00"), "purchase_timeframe": "this quarter",
                 "topic": "Fleet software", "notes": "Wants a demo in March."}


def raw_lead(actor, **overrides):
    """A lead row as an import could leave it (bypasses input validation, e.g. an empty name)."""
    return Lead.create(owner=actor, **dict(COMPLETE_LEAD, **overrides))


QUALIFY_MISSING = [
    pytest.param({"name": ""}, {"name"}, {"name": "Lena Lead"}, id="no name"),
    pytest.param({"email": "", "phone": ""}, {"email", "phone"}, {"phone": "+49 30 555 0101"},
                 id="no email and no phone"),
    pytest.param({"company": ""}, {"company"}, {"private_buyer": "1"}, id="no company and not a private buyer"),
    pytest.param({"budget_amount": None}, {"budget_amount"}, {"budget_amount": "7500"}, id="no budget"),
    pytest.param({"purchase_timeframe": None}, {"purchase_timeframe"}, {"purchase_timeframe": "this year"},
                 id="no purchase timeframe"),
    pytest.param({"name": "", "email": "", "phone": "", "company": "", "budget_amount": None,
                  "purchase_timeframe": None},
                 {"name", "email", "phone", "company", "budget_amount", "purchase_timeframe"},
                 {"name": "Lena Lead", "email": "lena@example.com", "company": "Acme GmbH", "budget_amount": "1",
                  "purchase_timeframe": "unknown"},
                 id="everything missing"),
]


@pytest.mark.parametrize("overrides, missing, fix", QUALIFY_MISSING)
def test_qualify_names_exactly_the_missing_fields_and_writes_nothing(seller, overrides, missing, fix):
    lead = raw_lead(seller, **overrides)
    before = snapshot(lead)
    with pytest.raises(RuleNotMet) as info:
        lead.qualify(seller)
    assert set(info.value.fields) == missing
    assert info.value.step == "develop"
    assert snapshot(fresh(lead)) == before
    assert Account.select().count() == Contact.select().count() == Opportunity.select().count() == 0


@pytest.mark.parametrize("overrides, missing, fix", QUALIFY_MISSING)
def test_qualify_completes_when_the_dialog_supplies_the_missing_fields(seller, overrides, missing, fix):
    lead = raw_lead(seller, **overrides)
    opportunity = fresh(lead).qualify(seller, **fix)
    lead = fresh(lead)
    assert lead.status == "qualified"
    assert opportunity.lead_id == lead.id
    event, = events(lead)
    assert event.action == "qualify"
    assert set(fix) <= set(event.change_map)


@pytest.mark.parametrize("overrides", [
    pytest.param({"phone": ""}, id="email only"),
    pytest.param({"email": "", "phone": "+49 30 555 0101"}, id="phone only"),
    pytest.param({"budget_amount": Decimal("0.00")}, id="budget of zero is filled in"),
    pytest.param({"purchase_timeframe": "unknown"}, id="timeframe unknown is an answer"),
])
def test_qualify_accepts_a_lead_that_meets_the_rule(seller, overrides):
    lead = raw_lead(seller, **overrides)
    opportunity = lead.qualify(seller)
    assert fresh(lead).status == "qualified"
    assert fresh(opportunity).stage == "develop"


def test_private_buyer_is_qualified_without_an_account(seller):
    lead = raw_lead(seller, company="", private_buyer=True)
    opportunity = fresh(lead.qualify(seller))
    assert opportunity.account_id is None
    assert Account.select().count() == 0
    assert opportunity.contact.name == "Lena Lead"
    assert opportunity.contact.account_id is None


def test_qualify_creates_account_contact_and_opportunity(seller):
    lead = make_lead(seller, company="Initech AG", name="Peter Gibbons", email="peter@initech.example",
                     phone="+49 89 1234", job_title="CTO", budget_amount="12500.50", topic="TPS reports",
                     purchase_timeframe="this year", notes="Call after 10am.\nHas budget approval.")
    lead_events = len(events(lead))
    opportunity = fresh(lead.qualify(seller))
    lead = fresh(lead)

    account, = Account.select()
    contact, = Contact.select()
    assert account.name == "Initech AG"
    assert (contact.name, contact.email, contact.job_title, contact.account_id) == (
        "Peter Gibbons", "peter@initech.example", "CTO", account.id)
    assert (opportunity.account_id, opportunity.contact_id, opportunity.lead_id) == (account.id, contact.id, lead.id)
    assert (opportunity.stage, opportunity.column, opportunity.status) == ("develop", "develop", "open")
    assert opportunity.probability == 20
    assert opportunity.estimated_revenue == Decimal("12500.50")
    assert isinstance(opportunity.estimated_revenue, Decimal)
    assert opportunity.estimated_close_date == datetime.date(TODAY.year, 12, 31)
    assert opportunity.topic == "TPS reports"
    assert opportunity.description == "Call after 10am.\nHas budget approval."
    assert opportunity.owner_id == seller.id
    assert lead.status == "qualified"
    assert lead.column is None
    assert len(events(lead)) == lead_events + 1
    event = events(lead)[-1]
    assert (event.action, event.from_stage, event.to_stage) == ("qualify", "qualify", "develop")
    assert event.change_map["status"] == ["open", "qualified"]


def test_qualifying_twice_returns_the_same_opportunity_and_writes_nothing(seller):
    lead = make_lead(seller)
    first = lead.qualify(seller)
    before = snapshot(first)
    again = fresh(lead).qualify(seller)
    assert again.id == first.id
    assert snapshot(first) == before


def test_qualify_with_a_stale_version_is_refused(seller, manager):
    lead = make_lead(seller)
    seen = lead.version
    fresh(lead).update_fields(manager, topic="Changed by Mia")
    before = snapshot(lead)
    with pytest.raises(StaleVersion) as info:
        lead.qualify(seller, expected_version=seen)
    assert info.value.status == 409
    assert info.value.changed_by == "Mia Manager"
    assert snapshot(lead) == before
    assert fresh(lead).qualify(seller, expected_version=fresh(lead).version) is not None


# ----- lead: duplicates ------------------------------------------------------------------------------------

@pytest.fixture
def existing(seller):
    """An account and a contact already in the CRM (the contact's email stored in mixed case by an import)."""
    account = Account.create_account(seller, name="Acme GmbH")
    contact = Contact.create(name="Lena L.", email="Lena@Example.COM", owner=seller)
    return account, contact


@pytest.mark.parametrize("lead_input, duplicates", [
    pytest.param({"company": "ACME gmbh", "email": "other@example.com"}, {"account"},
                 id="same company name in other case"),
    pytest.param({"company": "Other Ltd", "email": "lena@example.com"}, {"contact"}, id="same email"),
    pytest.param({"company": "acme GMBH", "email": "lena@example.com"}, {"account", "contact"},
                 id="same company and same email"),
])
def test_duplicates_are_offered_for_linking(seller, existing, lead_input, duplicates):
    account, contact = existing
    lead = make_lead(seller, **lead_input)
    before = snapshot(lead)
    with pytest.raises(RuleNotMet) as info:
        lead.qualify(seller)
    assert set(info.value.fields) == duplicates
    assert set(info.value.choices) == duplicates
    expected_ids = {"account": account.id, "contact": contact.id}
    for kind in duplicates:
        assert [choice[0] for choice in info.value.choices[kind]] == [expected_ids[kind]]
    assert snapshot(fresh(lead)) == before


def test_a_different_company_name_is_not_a_duplicate(seller, existing):
    lead = make_lead(seller, company="Acme GmbH & Co. KG", email="someone@example.com")
    opportunity = lead.qualify(seller)
    assert Account.select().count() == 2
    assert fresh(opportunity).account.name == "Acme GmbH & Co. KG"


@pytest.mark.parametrize("choose_account, choose_contact, new_accounts, new_contacts", [
    pytest.param("link", "link", 0, 0, id="link both"),
    pytest.param("new", "new", 1, 1, id="create both"),
    pytest.param("link", "new", 0, 1, id="link account, new contact"),
    pytest.param("new", "link", 1, 0, id="new account, link contact"),
])
def test_duplicate_choice_links_or_creates(seller, existing, choose_account, choose_contact, new_accounts,
                                            new_contacts):
    account, contact = existing
    lead = make_lead(seller, company="Acme GmbH", email="lena@example.com")
    accounts, contacts = Account.select().count(), Contact.select().count()
    inputs = {"account": str(account.id) if choose_account == "link" else "new",
              "contact": str(contact.id) if choose_contact == "link" else "new"}
    opportunity = fresh(lead.qualify(seller, **inputs))
    assert Account.select().count() == accounts + new_accounts
    assert Contact.select().count() == contacts + new_contacts
    assert (opportunity.account_id == account.id) == (choose_account == "link")
    assert (opportunity.contact_id == contact.id) == (choose_contact == "link")
    assert fresh(opportunity.contact).account_id == opportunity.account_id
    assert fresh(lead).status == "qualified"


def test_linking_an_unknown_record_is_refused(seller, existing):
    lead = make_lead(seller, company="Acme GmbH", email="lena@example.com")
    before = snapshot(lead)
    with pytest.raises(ValidationError) as info:
        lead.qualify(seller, account="999999", contact="new")
    assert set(info.value.fields) == {"account"}
    assert snapshot(fresh(lead)) == before


# ----- lead: disqualify / reopen -----------------------------------------------------------------------------

@pytest.mark.parametrize("reason, error, fields", [
    pytest.param(None, RuleNotMet, {"reason"}, id="no reason"),
    pytest.param("", RuleNotMet, {"reason"}, id="empty reason"),
    pytest.param("because", ValidationError, {"reason"}, id="unknown reason"),
])
def test_disqualify_requires_a_reason(seller, reason, error, fields):
    lead = make_lead(seller)
    before = snapshot(lead)
    with pytest.raises(error) as info:
        lead.disqualify(seller, reason=reason)
    assert set(info.value.fields) == fields
    assert snapshot(fresh(lead)) == before


def test_disqualify_and_reopen(seller):
    lead = make_lead(seller)
    assert lead.disqualify(seller, reason="cannot contact", note="Number disconnected") is True
    lead = fresh(lead)
    assert (lead.status, lead.column, lead.disqualify_reason) == ("disqualified", "lost", "cannot contact")
    assert lead.disqualify_note == "Number disconnected"
    assert [e.action for e in events(lead)] == ["create", "disqualify"]

    assert lead.disqualify(seller, reason="lost") is False
    assert len(events(lead)) == 2

    with pytest.raises(NotAllowed):
        fresh(lead).qualify(seller)

    assert fresh(lead).reopen(seller) is True
    lead = fresh(lead)
    assert (lead.status, lead.column, lead.disqualify_reason) == ("open", "qualify", None)
    assert [e.action for e in events(lead)] == ["create", "disqualify", "reopen"]
    assert lead.reopen(seller) is False
    assert len(events(lead)) == 3


def test_a_qualified_lead_cannot_be_disqualified_or_reopened(seller):
    lead = make_lead(seller)
    lead.qualify(seller)
    before = snapshot(lead)
    with pytest.raises(NotAllowed):
        fresh(lead).disqualify(seller, reason="lost")
    with pytest.raises(NotAllowed):
        fresh(lead).reopen(seller)
    assert snapshot(lead) == before


# ----- lead cards on the board --------------------------------------------------------------------------------

def test_lead_card_to_develop_qualifies(seller):
    lead = make_lead(seller)
    move = lead.move_to(seller, "develop")
    assert isinstance(move, Move) and move.changed
    assert (move.from_column, move.to_column) == ("qualify", "develop")
    assert isinstance(move.record, Opportunity) and move.record.lead_id == lead.id
    assert fresh(lead).status == "qualified"


@pytest.mark.parametrize("target, inputs, stage, quote_status", [
    pytest.param("propose", DIALOG_LINE, "propose", "draft", id="skip qualify->propose"),
    pytest.param("close", dict(DIALOG_LINE, activate_quote="1"), "close", "active", id="skip qualify->close"),
])
def test_lead_card_can_skip_forward_when_every_rule_holds(seller, target, inputs, stage, quote_status):
    lead = make_lead(seller)
    move = lead.move_to(seller, target, **inputs)
    opportunity = fresh(move.record)
    assert (opportunity.stage, opportunity.column) == (stage, target)
    quote, = Quote.select().where(Quote.opportunity == opportunity.id)
    assert quote.status == quote_status
    assert [l[0] for l in line_values(quote)] == ["Setup fee"]
    assert len(events(lead)) == 2
    assert len(events(opportunity)) == 1


@pytest.mark.parametrize("target, inputs", [
    pytest.param("develop", {}, id="to develop"),
    pytest.param("propose", DIALOG_LINE, id="skip to propose"),
    pytest.param("close", dict(DIALOG_LINE, activate_quote="1"), id="skip to close"),
])
def test_lead_card_with_duplicates_moves_once_the_dialog_chooses(seller, existing, target, inputs):
    account, contact = existing
    lead = make_lead(seller, company="Acme GmbH", email="lena@example.com")
    before = snapshot(lead)
    with pytest.raises(RuleNotMet) as info:
        lead.move_to(seller, target, **inputs)
    assert set(info.value.fields) == {"account", "contact"}
    assert snapshot(fresh(lead)) == before
    move = fresh(lead).move_to(seller, target, account="new", contact=str(contact.id), **inputs)
    opportunity = fresh(move.record)
    assert opportunity.column == target
    assert opportunity.contact_id == contact.id
    assert opportunity.account_id not in (None, account.id)
    assert Account.select().count() == 2


def test_lead_card_skip_is_refused_as_a_whole_when_a_later_rule_fails(seller):
    lead = make_lead(seller)
    before = snapshot(lead)
    with pytest.raises(RuleNotMet) as info:
        lead.move_to(seller, "propose")
    assert info.value.step == "propose"
    assert set(info.value.fields) == {"line"}
    assert snapshot(fresh(lead)) == before
    assert fresh(lead).status == "open"


@pytest.mark.parametrize("setup, target, expected_column", [
    pytest.param("open", "lost", "lost", id="disqualify by dragging to Lost"),
    pytest.param("disqualified", "qualify", "qualify", id="reopen by dragging back to Qualify"),
])
def test_lead_card_disqualify_and_reopen(seller, setup, target, expected_column):
    lead = make_lead(seller)
    if setup == "disqualified":
        lead.disqualify(seller, reason="lost")
    count = len(events(lead))
    move = fresh(lead).move_to(seller, target, reason="no longer interested")
    assert move.changed
    assert fresh(lead).column == expected_column
    assert len(events(lead)) == count + 1
    again = fresh(lead).move_to(seller, target, reason="no longer interested")
    assert not again.changed
    assert len(events(lead)) == count + 1


@pytest.mark.parametrize("setup, target, inputs, error, fields", [
    pytest.param("open", "lost", {}, RuleNotMet, {"reason"}, id="to Lost without a reason"),
    pytest.param("open", "fulfill", {}, NotAllowed, None, id="open lead to Fulfill"),
    pytest.param("open", "invoiced", {}, NotAllowed, None, id="open lead to Invoiced"),
    pytest.param("open", "archive", {}, ValidationError, {"stage"}, id="unknown column"),
    pytest.param("disqualified", "develop", {}, NotAllowed, None, id="disqualified lead to Develop"),
    pytest.param("qualified", "close", {}, NotAllowed, None, id="qualified lead to another column"),
    pytest.param("qualified", "lost", {"reason": "lost"}, NotAllowed, None, id="qualified lead to Lost"),
])
def test_lead_card_refused_moves_change_nothing(seller, setup, target, inputs, error, fields):
    lead = make_lead(seller)
    if setup == "disqualified":
        lead.disqualify(seller, reason="lost")
    elif setup == "qualified":
        lead.qualify(seller)
    lead = fresh(lead)
    before = snapshot(lead)
    with pytest.raises(error) as info:
        lead.move_to(seller, target, **inputs)
    if fields is not None:
        assert set(info.value.fields) == fields
    assert snapshot(fresh(lead)) == before


@pytest.mark.parametrize("column", ["develop", "propose"])
def test_dragging_a_qualified_lead_to_its_opportunitys_column_again_is_a_no_op(seller, column):
    lead = make_lead(seller)
    lead.move_to(seller, "develop")
    if column != "develop":
        fresh(lead).opportunity.add_line(seller, **LINE)
        fresh(lead).opportunity.move_to(seller, column)
    opportunity = fresh(lead).opportunity
    before = snapshot(opportunity)
    move = fresh(lead).move_to(seller, column)
    assert not move.changed
    assert snapshot(opportunity) == before


def test_lead_card_stale_version_is_refused(seller, manager):
    lead = make_lead(seller)
    seen = lead.version
    fresh(lead).update_fields(manager, phone="+49 40 999")
    before = snapshot(lead)
    with pytest.raises(StaleVersion):
        fresh(lead).move_to(seller, "develop", expected_version=seen)
    assert snapshot(lead) == before


# ----- opportunity moves -----------------------------------------------------------------------------------

def bare(actor):
    """A deal entered by hand: no customer, no close date, no lines."""
    return Opportunity.create(topic="Walk-in enquiry", owner=actor, estimated_close_date=None)


def develop_without_lines(actor):
    return make_opportunity(actor)


def develop(actor):
    return make_opportunity(actor, [LINE, SECOND_LINE])


def propose(actor):
    return make_proposed(actor, [LINE, SECOND_LINE])


def close(actor):
    return make_closing(actor, [LINE, SECOND_LINE])


def fulfill(actor):
    return make_won_deal(actor, [LINE, SECOND_LINE])


def invoiced(actor):
    opportunity = fulfill(actor)
    opportunity.move_to(actor, "invoiced")
    return fresh(opportunity)


def lost_from(builder):
    def build(actor):
        opportunity = builder(actor)
        opportunity.move_to(actor, "lost", close_reason="price")
        return fresh(opportunity)
    build.__name__ = f"lost_from_{builder.__name__}"
    return build


SETUPS = {f.__name__: f for f in (bare, develop_without_lines, develop, propose, close, fulfill, invoiced,
                                  lost_from(develop), lost_from(propose), lost_from(close))}

REFUSED = [
    pytest.param("develop_without_lines", "propose", {}, RuleNotMet, {"line"}, "propose",
                 id="develop->propose needs a line"),
    pytest.param("bare", "propose", {}, RuleNotMet, {"line", "estimated_close_date", "customer"}, "propose",
                 id="develop->propose needs line, close date and customer"),
    pytest.param("develop", "propose", {"estimated_close_date": "2026-13-45"}, ValidationError,
                 {"estimated_close_date"}, None, id="develop->propose with a bad date"),
    pytest.param("develop_without_lines", "propose", {"line_description": "Setup", "line_unit_price": "abc"},
                 ValidationError, {"line_unit_price", "line"}, None, id="develop->propose with a bad dialog line"),
    pytest.param("develop_without_lines", "close", {"activate_quote": "1"}, RuleNotMet, {"line"}, "propose",
                 id="skip develop->close names the first unmet step"),
    pytest.param("develop_without_lines", "fulfill", dict(WIN, activate_quote="1"), RuleNotMet, {"line"},
                 "propose", id="skip develop->fulfill names the first unmet step"),
    pytest.param("develop", "close", {}, RuleNotMet, {"activate_quote"}, "close",
                 id="skip develop->close without sending the quote"),
    pytest.param("propose", "close", {}, RuleNotMet, {"activate_quote"}, "close",
                 id="propose->close needs an active quote"),
    pytest.param("propose", "fulfill", WIN, RuleNotMet, {"activate_quote"}, "close",
                 id="skip propose->fulfill needs an active quote"),
    pytest.param("close", "fulfill", {}, RuleNotMet, {"actual_revenue", "actual_close_date"}, "fulfill",
                 id="close->fulfill asks revenue and date"),
    pytest.param("close", "fulfill", {"actual_revenue": "1800"}, RuleNotMet, {"actual_close_date"}, "fulfill",
                 id="close->fulfill asks the date"),
    pytest.param("close", "fulfill", dict(WIN, actual_revenue="-1"), ValidationError, {"actual_revenue"}, None,
                 id="close->fulfill with negative revenue"),
    pytest.param("close", "fulfill", dict(WIN, actual_close_date=TOMORROW.isoformat()), ValidationError,
                 {"actual_close_date"}, None, id="close->fulfill with a future close date"),
    pytest.param("develop", "lost", {}, RuleNotMet, {"close_reason"}, "lost", id="develop->lost needs a reason"),
    pytest.param("close", "lost", {"competitor": "Globex"}, RuleNotMet, {"close_reason"}, "lost",
                 id="close->lost needs a reason"),
    pytest.param("close", "lost", {"close_reason": "bad luck"}, ValidationError, {"close_reason"}, None,
                 id="close->lost with an unknown reason"),
    pytest.param("develop", "qualify", {}, NotAllowed, None, None, id="develop->qualify"),
    pytest.param("close", "qualify", {}, NotAllowed, None, None, id="close->qualify"),
    pytest.param("lost_from_propose", "qualify", {}, NotAllowed, None, None, id="lost->qualify"),
    pytest.param("lost_from_propose", "develop", {}, NotAllowed, None, None, id="lost->other column than its own"),
    pytest.param("lost_from_close", "fulfill", WIN, NotAllowed, None, None, id="lost->fulfill"),
    pytest.param("fulfill", "close", {}, NotAllowed, None, None, id="won deal back to close"),
    pytest.param("fulfill", "lost", {"close_reason": "price"}, NotAllowed, None, None, id="won deal to lost"),
    pytest.param("invoiced", "fulfill", {}, NotAllowed, None, None, id="invoiced back to fulfill"),
    pytest.param("develop", "invoiced", {}, RuleNotMet, {"activate_quote"}, "close",
                 id="skip develop->invoiced stops at the first unmet step"),
    pytest.param("develop", "archive", {}, ValidationError, {"stage"}, None, id="unknown stage"),
]


@pytest.mark.parametrize("setup, target, inputs, error, fields, step", REFUSED)
def test_refused_move_changes_nothing(seller, setup, target, inputs, error, fields, step):
    opportunity = SETUPS[setup](seller)
    before = snapshot(opportunity)
    with pytest.raises(error) as info:
        opportunity.move_to(seller, target, **inputs)
    if fields is not None:
        assert set(info.value.fields) == fields
    if step is not None:
        assert info.value.step == step
    assert snapshot(opportunity) == before


def test_win_dialog_defaults_are_the_active_quote_total_and_today(seller):
    opportunity = close(seller)
    quote = opportunity.quote_in("active")
    assert quote.net_total == Decimal("1920.15")
    with pytest.raises(RuleNotMet) as info:
        opportunity.move_to(seller, "fulfill")
    assert info.value.defaults == {"actual_revenue": Decimal("1920.15"), "actual_close_date": TODAY}


def check_proposed(actor, before, after):
    assert after.probability == 50
    quote, = Quote.select().where(Quote.opportunity == after.id)
    assert (quote.status, quote.revision) == ("draft", 1)
    assert line_values(quote) == line_values(after)
    assert (quote.account_id, quote.contact_id) == (after.account_id, after.contact_id)
    assert quote.net_total == after.totals().net


def check_proposed_from_dialog(actor, before, after):
    assert [l[0] for l in line_values(after)] == ["Setup fee"]
    assert after.estimated_close_date == NEXT_MONTH
    check_proposed(actor, before, after)


def check_closing(actor, before, after):
    assert after.probability == 80
    quote, = Quote.select().where(Quote.opportunity == after.id)
    assert quote.status == "active"
    assert line_values(quote) == line_values(after)


def check_won(actor, before, after):
    assert (after.status, after.column, after.probability) == ("won", "fulfill", 100)
    assert after.actual_revenue == Decimal("1800.00")
    assert after.actual_close_date == TODAY
    quote, = Quote.select().where(Quote.opportunity == after.id)
    assert quote.status == "won"
    order, = Order.select().where(Order.opportunity == after.id)
    assert order.status == "open"
    assert order.quote_id == quote.id
    assert line_values(order) == line_values(quote)
    assert order.net_total == quote.net_total


def check_invoiced(actor, before, after):
    assert (after.status, after.column) == ("won", "invoiced")
    order, = Order.select().where(Order.opportunity == after.id)
    assert order.status == "fulfilled"
    invoice, = Invoice.select().where(Invoice.order == order.id)
    assert invoice.status == "issued"
    assert invoice.number == f"INV-{TODAY.year}-00001"
    assert invoice.issue_date == TODAY
    assert line_values(invoice) == line_values(order)


def check_lost(actor, before, after):
    assert (after.status, after.column, after.probability) == ("lost", "lost", 0)
    assert after.lost_from == before.column
    assert after.close_reason == "competitor"
    assert after.competitor == "Globex"
    statuses = [q.status for q in Quote.select().where(Quote.opportunity == after.id)]
    assert all(s == "lost" for s in statuses)
    if before.column in ("propose", "close"):
        assert statuses


def check_reopened(actor, before, after):
    assert after.status == "open"
    assert after.stage == after.column == before.lost_from
    assert after.probability == {"develop": 20, "propose": 50, "close": 80}[after.stage]
    assert after.lost_from is None and after.close_reason is None
    assert events(after)[-1].action == "reopen"


def check_revised(actor, before, after):
    assert after.probability == {"develop": 20, "propose": 50}[after.stage]
    old, new = Quote.select().where(Quote.opportunity == after.id).order_by(Quote.revision)
    assert (old.status, new.status) == ("revised", "draft")
    assert new.number == old.number
    assert new.revision == old.revision + 1
    assert line_values(new) == line_values(old)


def check_back_to_develop(actor, before, after):
    assert after.probability == 20
    quote, = Quote.select().where(Quote.opportunity == after.id)
    assert (quote.status, quote.revision) == ("draft", 1)


LOST = {"close_reason": "competitor", "competitor": "Globex", "close_note": "They were cheaper."}

SUCCESS = [
    pytest.param("develop", "propose", {}, check_proposed, id="develop->propose creates a draft quote"),
    pytest.param("develop_without_lines", "propose",
                 dict(DIALOG_LINE, estimated_close_date=NEXT_MONTH.isoformat()), check_proposed_from_dialog,
                 id="develop->propose completed by the dialog"),
    pytest.param("propose", "close", {"activate_quote": "1"}, check_closing, id="propose->close activates the quote"),
    pytest.param("develop", "close", {"activate_quote": "1"}, check_closing, id="skip develop->close"),
    pytest.param("close", "fulfill", WIN, check_won, id="close->fulfill wins the deal"),
    pytest.param("develop", "fulfill", dict(WIN, activate_quote="1"), check_won, id="skip develop->fulfill"),
    pytest.param("fulfill", "invoiced", {}, check_invoiced, id="fulfill->invoiced issues the invoice"),
    pytest.param("close", "invoiced", WIN, check_invoiced, id="skip close->invoiced"),
    pytest.param("develop", "lost", LOST, check_lost, id="develop->lost"),
    pytest.param("propose", "lost", LOST, check_lost, id="propose->lost loses the draft quote"),
    pytest.param("close", "lost", LOST, check_lost, id="close->lost loses the active quote"),
    pytest.param("lost_from_develop", "develop", {}, check_reopened, id="lost->develop reopens"),
    pytest.param("lost_from_propose", "propose", {}, check_reopened, id="lost->propose reopens"),
    pytest.param("lost_from_close", "close", {}, check_reopened, id="lost->close reopens"),
    pytest.param("close", "propose", {}, check_revised, id="close->propose revises the active quote"),
    pytest.param("close", "develop", {}, check_revised, id="close->develop revises the active quote"),
    pytest.param("propose", "develop", {}, check_back_to_develop, id="propose->develop keeps the draft"),
]


@pytest.mark.parametrize("setup, target, inputs, check", SUCCESS)
def test_successful_move_does_the_step_with_one_history_event(seller, setup, target, inputs, check):
    opportunity = SETUPS[setup](seller)
    before = fresh(opportunity)
    count = len(events(opportunity))

    move = opportunity.move_to(seller, target, **inputs)

    after = fresh(opportunity)
    assert move.changed
    assert (move.from_column, move.to_column) == (before.column, target)
    assert after.column == target
    assert after.version == before.version + 1  # one committed change: one version bump, one event
    new_events = events(after)[count:]
    assert len(new_events) == 1, [(e.action, e.from_stage, e.to_stage) for e in new_events]
    assert (new_events[0].from_stage, new_events[0].to_stage) == (before.column, target)
    assert new_events[0].actor_id == seller.id
    check(seller, before, after)


@pytest.mark.parametrize("setup, target, inputs, check", SUCCESS)
def test_repeating_a_move_changes_nothing(seller, setup, target, inputs, check):
    opportunity = SETUPS[setup](seller)
    opportunity.move_to(seller, target, **inputs)
    before = snapshot(opportunity)
    again = fresh(opportunity).move_to(seller, target, **inputs)
    assert again.changed is False
    assert again.to_column == target
    assert snapshot(opportunity) == before


STALE = [
    pytest.param("develop", "propose", {}, id="develop->propose"),
    pytest.param("propose", "close", {"activate_quote": "1"}, id="propose->close"),
    pytest.param("close", "fulfill", WIN, id="close->fulfill"),
    pytest.param("fulfill", "invoiced", {}, id="fulfill->invoiced"),
    pytest.param("close", "propose", {}, id="close->propose"),
    pytest.param("close", "lost", LOST, id="close->lost"),
    pytest.param("lost_from_propose", "propose", {}, id="lost->propose"),
]


@pytest.mark.parametrize("setup, target, inputs", STALE)
def test_stale_version_is_refused_and_a_fresh_one_succeeds(seller, manager, setup, target, inputs):
    opportunity = SETUPS[setup](seller)
    seen = opportunity.version
    fresh(opportunity).update_fields(manager, description="Customer called: wants a call back.")
    before = snapshot(opportunity)
    with pytest.raises(StaleVersion) as info:
        opportunity.move_to(seller, target, expected_version=seen, **inputs)
    assert info.value.status == 409
    assert info.value.changed_by == "Mia Manager"
    assert info.value.record.version == seen + 1
    assert snapshot(opportunity) == before
    move = opportunity.move_to(seller, target, expected_version=seen + 1, **inputs)
    assert move.changed
    assert fresh(opportunity).column == target


def test_default_probabilities_by_stage(seller):
    opportunity = develop(seller)
    seen = []
    for target, inputs in (("propose", {}), ("close", {"activate_quote": "1"}), ("fulfill", WIN)):
        opportunity.move_to(seller, target, **inputs)
        seen.append(fresh(opportunity).probability)
    assert seen == [50, 80, 100]
    other = develop(seller)
    other.move_to(seller, "lost", close_reason="timing")
    assert fresh(other).probability == 0


def test_close_dialog_can_renew_an_expired_draft_quote(seller):
    opportunity = propose(seller)
    draft = opportunity.quote_in("draft")
    draft.update_fields(seller, valid_until=YESTERDAY.isoformat())
    before = snapshot(opportunity)
    with pytest.raises(RuleNotMet) as info:
        opportunity.move_to(seller, "close", activate_quote="1")
    assert set(info.value.fields) == {"valid_until"}
    assert info.value.step == "close"
    assert snapshot(opportunity) == before
    move = opportunity.move_to(seller, "close", activate_quote="1", valid_until=NEXT_MONTH.isoformat())
    assert move.changed
    quote = fresh(draft)
    assert (quote.status, quote.valid_until) == ("active", NEXT_MONTH)


def test_back_to_propose_and_close_again_activates_the_new_revision(seller):
    opportunity = close(seller)
    opportunity.move_to(seller, "propose")
    opportunity.move_to(seller, "close", activate_quote="1")
    quotes = list(Quote.select().where(Quote.opportunity == opportunity.id).order_by(Quote.revision))
    assert [(q.revision, q.status) for q in quotes] == [(1, "revised"), (2, "active")]
    opportunity.move_to(seller, "fulfill", **WIN)
    order = fresh(opportunity).order
    assert order.quote_id == quotes[1].id
    assert fresh(quotes[1]).status == "won" and fresh(quotes[0]).status == "revised"


def test_reopened_deal_can_be_proposed_again_with_a_new_quote(seller):
    opportunity = lost_from(propose)(seller)
    old, = Quote.select().where(Quote.opportunity == opportunity.id)
    opportunity.move_to(seller, "propose")
    opportunity.move_to(seller, "close", activate_quote="1")
    active = fresh(opportunity).quote_in("active")
    assert active is not None and active.id != old.id
    assert fresh(old).status == "lost"


# ----- quotes --------------------------------------------------------------------------------------------------

def draft_quote(actor, customer=True, lines=True):
    opportunity = make_opportunity(actor, [LINE] if lines else [])
    if not customer:
        Opportunity.update(account=None, contact=None).where(Opportunity.id == opportunity.id).execute()
    return Quote.create_from_opportunity(actor, fresh(opportunity))


@pytest.mark.parametrize("make, missing", [
    pytest.param(lambda a: draft_quote(a, lines=False), {"line"}, id="no lines"),
    pytest.param(lambda a: draft_quote(a, customer=False), {"customer"}, id="no customer"),
    pytest.param(lambda a: _expired(draft_quote(a), a), {"valid_until"}, id="valid-until in the past"),
    pytest.param(lambda a: _expired(draft_quote(a, customer=False, lines=False), a),
                 {"line", "customer", "valid_until"}, id="nothing ready"),
])
def test_quote_activation_rules(seller, make, missing):
    quote = make(seller)
    before = snapshot(quote)
    with pytest.raises(RuleNotMet) as info:
        quote.activate(seller)
    assert set(info.value.fields) == missing
    assert snapshot(quote) == before


def _expired(quote, actor):
    quote.update_fields(actor, valid_until=(TODAY - datetime.timedelta(days=1)).isoformat())
    return fresh(quote)


def test_quote_activation_with_a_new_valid_until(seller):
    quote = _expired(draft_quote(seller), seller)
    with pytest.raises(ValidationError) as info:
        quote.activate(seller, valid_until=YESTERDAY.isoformat())
    assert set(info.value.fields) == {"valid_until"}
    assert quote.activate(seller, valid_until=NEXT_MONTH.isoformat()) is True
    quote = fresh(quote)
    assert (quote.status, quote.valid_until) == ("active", NEXT_MONTH)
    assert quote.activate(seller) is False
    assert [e.action for e in events(quote)] == ["create", "update", "activate"]


def test_a_quote_valid_until_today_can_be_activated(seller):
    quote = draft_quote(seller)
    quote.update_fields(seller, valid_until=TODAY.isoformat())
    assert fresh(quote).activate(seller) is True
    assert fresh(quote).status == "active"


def test_only_one_active_quote_per_opportunity(seller):
    first = draft_quote(seller)
    second = Quote.create_from_opportunity(seller, first.opportunity)
    assert first.activate(seller) is True
    before = snapshot(second)
    with pytest.raises(NotAllowed):
        second.activate(seller)
    assert snapshot(second) == before
    assert Quote.select().where((Quote.opportunity == first.opportunity_id) & (Quote.status == "active")).count() == 1


def test_revise_an_active_quote(seller):
    quote = draft_quote(seller)
    quote.add_line(seller, **SECOND_LINE)
    with pytest.raises(NotAllowed):
        fresh(quote).revise(seller)
    quote.activate(seller)
    draft = fresh(quote).revise(seller)
    quote = fresh(quote)
    assert quote.status == "revised"
    assert (draft.number, draft.revision, draft.status) == (quote.number, 2, "draft")
    assert draft.display_number == f"Q-{quote.number:05d} rev 2"
    assert line_values(draft) == line_values(quote)
    assert fresh(draft).net_total == quote.net_total
    count = Quote.select().count()
    assert quote.revise(seller).id == draft.id
    assert Quote.select().count() == count


def test_lose_a_quote_keeps_the_deal_open(seller):
    quote = draft_quote(seller)
    assert quote.lose(seller) is True
    assert fresh(quote).status == "lost"
    assert fresh(quote.opportunity).status == "open"
    assert fresh(quote).lose(seller) is False
    with pytest.raises(NotAllowed):
        fresh(quote).activate(seller)


def test_a_won_quote_cannot_be_lost(seller):
    opportunity = fulfill(seller)
    quote, = Quote.select().where(Quote.opportunity == opportunity.id)
    with pytest.raises(NotAllowed):
        quote.lose(seller)
    assert fresh(quote).status == "won"


# ----- orders --------------------------------------------------------------------------------------------------

def test_order_fulfil(seller):
    order = fulfill(seller).order
    assert order.fulfil(seller) is True
    order = fresh(order)
    assert order.status == "fulfilled" and order.fulfilled_at is not None
    assert order.fulfil(seller) is False
    assert [e.action for e in events(order)] == ["create", "fulfil"]
    with pytest.raises(NotAllowed):
        order.cancel(seller, reason="Too late")


@pytest.mark.parametrize("reason", [None, "", "   "], ids=["none", "empty", "blank"])
def test_order_cancel_requires_a_reason(seller, reason):
    order = fulfill(seller).order
    before = snapshot(order)
    with pytest.raises(RuleNotMet) as info:
        order.cancel(seller, reason=reason)
    assert set(info.value.fields) == {"reason"}
    assert snapshot(order) == before


def test_order_cancel_removes_the_deal_from_the_board(seller):
    opportunity = fulfill(seller)
    order = opportunity.order
    count = len(events(opportunity))
    assert order.cancel(seller, reason="Customer went bankrupt") is True
    order = fresh(order)
    assert (order.status, order.cancel_reason) == ("canceled", "Customer went bankrupt")
    assert fresh(opportunity).column is None
    assert len(events(opportunity)) == count + 1
    assert order.cancel(seller, reason="again") is False
    with pytest.raises(NotAllowed):
        order.fulfil(seller)
    with pytest.raises(NotAllowed):
        Invoice.create_from_order(seller, order)


# ----- invoices ------------------------------------------------------------------------------------------------

def test_create_invoice_from_order_once(seller):
    invoice = make_draft_invoice(seller, [LINE, SECOND_LINE])
    order = invoice.order
    assert invoice.status == "draft" and invoice.number is None
    assert line_values(invoice) == line_values(order)
    assert fresh(invoice).gross_total == order.gross_total
    before = world_counts()
    with pytest.raises(NotAllowed):
        Invoice.create_from_order(seller, fresh(order))
    assert world_counts() == before
    invoice.cancel(seller, reason="Wrong address")
    second = Invoice.create_from_order(seller, fresh(order))
    assert second.id != invoice.id and second.status == "draft"


def test_issue_allocates_gapless_numbers_per_year(seller):
    a, b, c, d = (make_draft_invoice(seller) for _ in range(4))
    last_year = datetime.date(TODAY.year - 1, 12, 30)
    assert a.issue(seller) is True
    assert b.issue(seller, issue_date=last_year.isoformat()) is True
    assert c.issue(seller) is True
    assert d.issue(seller, issue_date=last_year.isoformat()) is True
    assert [fresh(i).number for i in (a, b, c, d)] == [
        f"INV-{TODAY.year}-00001", f"INV-{TODAY.year - 1}-00001", f"INV-{TODAY.year}-00002",
        f"INV-{TODAY.year - 1}-00002"]
    b = fresh(b)
    assert (b.issue_date, b.due_date) == (last_year, last_year + datetime.timedelta(days=30))
    assert fresh(a).issue(seller) is False
    assert fresh(a).number == f"INV-{TODAY.year}-00001"
    assert [e.action for e in events(a)] == ["create", "issue"]


def test_issue_rolled_back_gives_the_number_back(seller):
    first, second = make_draft_invoice(seller), make_draft_invoice(seller)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with db.atomic():
            first.issue(seller)
            raise Abort
    assert fresh(first).status == "draft" and fresh(first).number is None
    second.issue(seller)
    assert fresh(second).number == f"INV-{TODAY.year}-00001"


def test_issue_date_not_before_the_latest_invoice_of_its_year(seller):
    a, b, c = (make_draft_invoice(seller) for _ in range(3))
    year = TODAY.year - 1  # last year's dates are in the past on any day the test runs
    assert a.issue(seller) is True  # this year's invoice does not hold back last year's
    assert b.issue(seller, issue_date=datetime.date(year, 12, 20).isoformat()) is True
    before = snapshot(c)
    with pytest.raises(ValidationError) as info:
        c.issue(seller, issue_date=datetime.date(year, 12, 19).isoformat())
    assert set(info.value.fields) == {"issue_date"}
    assert f"Invoice INV-{year}-00001 is dated {year}-12-20" in info.value.fields["issue_date"]
    assert snapshot(c) == before
    assert c.issue(seller, issue_date=datetime.date(year, 12, 20).isoformat()) is True
    assert fresh(c).number == f"INV-{year}-00002"  # the refused issue gave its number back


def test_issue_date_cannot_be_far_in_the_future(seller):
    invoice = make_draft_invoice(seller)
    before = snapshot(invoice)
    with pytest.raises(ValidationError) as info:
        invoice.issue(seller, issue_date=(TODAY + datetime.timedelta(days=10)).isoformat())
    assert set(info.value.fields) == {"issue_date"}
    assert snapshot(invoice) == before


def test_mark_paid(seller):
    invoice = make_draft_invoice(seller)
    with pytest.raises(NotAllowed):
        invoice.mark_paid(seller)
    issued_on = TODAY - datetime.timedelta(days=5)
    invoice.issue(seller, issue_date=issued_on.isoformat())
    invoice = fresh(invoice)
    before = snapshot(invoice)
    with pytest.raises(RuleNotMet) as info:
        invoice.mark_paid(seller, paid_on=(issued_on - datetime.timedelta(days=1)).isoformat())
    assert set(info.value.fields) == {"paid_on"}
    assert snapshot(invoice) == before
    with pytest.raises(ValidationError):
        invoice.mark_paid(seller, paid_on=TOMORROW.isoformat())
    assert snapshot(invoice) == before
    assert invoice.mark_paid(seller, paid_on=issued_on.isoformat()) is True
    invoice = fresh(invoice)
    assert (invoice.status, invoice.paid_on, invoice.payment_state) == ("paid", issued_on, "paid")
    assert invoice.mark_paid(seller) is False
    with pytest.raises(NotAllowed):
        invoice.cancel(seller, reason="Oops")


def test_cancel_keeps_the_number_and_the_next_one_follows(seller):
    invoice = make_draft_invoice(seller)
    invoice.issue(seller)
    number = fresh(invoice).number
    before = snapshot(invoice)
    with pytest.raises(RuleNotMet) as info:
        invoice.cancel(seller, reason="")
    assert set(info.value.fields) == {"reason"}
    assert snapshot(invoice) == before
    assert invoice.cancel(seller, reason="Wrong VAT id") is True
    canceled = fresh(invoice)
    assert (canceled.status, canceled.number) == ("canceled", number)
    assert fresh(canceled.opportunity).column == "fulfill"
    replacement = Invoice.create_from_order(seller, fresh(canceled.order))
    replacement.issue(seller)
    assert fresh(replacement).number == f"INV-{TODAY.year}-00002"
    assert fresh(canceled.opportunity).column == "invoiced"


# ----- read-only lines ---------------------------------------------------------------------------------------

def active_quote(actor):
    return close(actor).quote_in("active")


def open_order(actor):
    return fulfill(actor).order


def issued_invoice(actor):
    invoice = make_draft_invoice(actor)
    invoice.issue(actor)
    return fresh(invoice)


def won_opportunity(actor):
    return fulfill(actor)


def _add(document, actor):
    document.add_line(actor, description="Extra", unit_price="1.00")


def _update(document, actor):
    document.update_line(actor, document.line_rows()[0].id, unit_price="0.01")


def _remove(document, actor):
    document.remove_line(actor, document.line_rows()[0].id)


@pytest.mark.parametrize("edit", [_add, _update, _remove], ids=["add line", "change line", "remove line"])
@pytest.mark.parametrize("make", [active_quote, open_order, issued_invoice, won_opportunity],
                         ids=["active quote", "order", "issued invoice", "won opportunity"])
def test_lines_are_read_only_on_frozen_documents(seller, make, edit):
    document = make(seller)
    lines = line_values(document)
    before = snapshot(document)
    with pytest.raises(NotAllowed):
        edit(fresh(document), seller)
    assert line_values(fresh(document)) == lines
    assert snapshot(document) == before


@pytest.mark.parametrize("make", [
    pytest.param(lambda a: propose(a).quote_in("draft"), id="draft quote"),
    pytest.param(make_draft_invoice, id="draft invoice"),
    pytest.param(develop, id="open opportunity"),
])
def test_lines_are_editable_on_drafts(seller, make):
    document = make(seller)
    count = len(document.line_rows())
    net = fresh(document).net_total
    document.add_line(seller, description="Extra", unit_price="10.00")
    document.update_line(seller, document.line_rows()[0].id, quantity="3")
    assert len(fresh(document).line_rows()) == count + 1
    assert fresh(document).net_total != net
    assert [e.action for e in events(document)][-2:] == ["add_line", "update_line"]


@pytest.mark.parametrize("create", [
    lambda actor: Lead.create_lead(actor, company="No Name GmbH"),
    lambda actor: Account.create_account(actor, email="a@x.example"),
    lambda actor: Contact.create_contact(actor, email="c@x.example"),
    lambda actor: Product.create_product(actor, name="No SKU", list_price="10"),
    lambda actor: Product.create_product(actor, sku="NO-NAME", list_price="10"),
])
def test_creating_without_a_required_name_is_a_validation_error_not_a_crash(seller, create):
    """A caller that leaves a required text out entirely (an API client, an import) gets the field's
    message, as a form that sends it blank does; nothing is written."""
    with pytest.raises(ValidationError) as refused:
        create(seller)
    assert set(refused.value.fields) & {"name", "sku"}
    assert (Lead.select().count(), Account.select().count(), Contact.select().count(),
            Product.select().count()) == (0, 0, 0, 0)


@pytest.mark.parametrize("field, value, message", [
    ("name", "Anna\x07 Berg", "control characters"), ("name", "Anna\nBerg", "single line"),
    ("company", "Acme\x00", "control characters"), ("notes", "bad \x1b[31m escape", "control characters"),
    ("notes", "lone \ud800 surrogate", "control characters"), ("topic", "C1 \x85 next line", "control characters"),
    ("company", "Acme \u202eHG", "direction override"), ("notes", "left \u202dto right", "direction override"),
])
def test_text_with_control_characters_is_refused_at_the_field(database, seller, field, value, message):
    """Control characters never reach a record (they break e-invoice XML and exports)."""
    from models import ValidationError
    data = {"name": "Anna Berg", "company": "Acme", field: value}
    with pytest.raises(ValidationError) as refused:
        Lead.create_lead(seller, **data)
    assert message in refused.value.fields[field] and Lead.select().count() == 0
    lead = Lead.create_lead(seller, name="Anna Berg", company="Acme", notes="Line one\n\tindented\r\nline two")
    assert lead.notes == "Line one\n\tindented\r\nline two"  # tabs and line breaks stay in multi-line text
    hebrew = Lead.create_lead(seller, name="\u05d3\u05e0\u05d4 \u05dc\u05d5\u05d9", company="\u2067\u200fAcme\u2069")
    assert hebrew.company == "\u2067\u200fAcme\u2069"  # right-to-left text, its marks and isolates are welcome


# ----- VAT exemptions (category E) -------------------------------------------------------------------------

EXAM = {"sku": "EXM-1", "name": "Certification exam fee", "list_price": "250", "tax_rate": "0",
        "tax_exemption": "§ 4 Nr. 21 UStG"}
NOT_TAXED = "Only an item without VAT can be exempt"


def test_an_exempt_product_passes_its_ground_on_to_the_line_to_the_order_and_the_invoice(seller):
    exam = Product.create_product(seller, **EXAM)
    invoice = make_draft_invoice(seller, lines=[{"product": exam.id, "quantity": "2"}])
    order = invoice.order
    quote = order.quote
    for document in (quote, order, invoice):
        line, = document.line_rows()
        assert (line.tax_rate, line.tax_exemption) == (Decimal("0.00"), "§ 4 Nr. 21 UStG"), document
    # the product's own rate sent again, or a blank ground, still takes the product's ground; another rate does not
    for given in ({"tax_rate": "0"}, {"tax_rate": "0.00", "tax_exemption": ""}, {"tax_exemption": " "}):
        assert fresh(invoice).add_line(seller, product=exam.id, **given).tax_exemption == "§ 4 Nr. 21 UStG", given
    assert fresh(invoice).add_line(seller, product=exam.id, tax_rate="7").tax_exemption == ""


def test_an_exemption_belongs_to_a_zero_rate(seller):
    with pytest.raises(ValidationError) as refused:
        Product.create_product(seller, **dict(EXAM, tax_rate="19"))
    assert NOT_TAXED in refused.value.fields["tax_exemption"] and Product.select().count() == 0
    exam = Product.create_product(seller, **EXAM)
    with pytest.raises(ValidationError) as refused:
        fresh(exam).update_fields(seller, tax_rate="7", tax_exemption="§ 4 Nr. 14 UStG")
    assert NOT_TAXED in refused.value.fields["tax_exemption"] and fresh(exam).tax_rate == 0
    # raising the rate of an exempt product ends its exemption (one event says both)
    assert fresh(exam).update_fields(seller, tax_rate="19")
    assert (fresh(exam).tax_rate, fresh(exam).tax_exemption) == (Decimal("19.00"), "")
    assert events(exam)[-1].change_map["tax_exemption"] == ["§ 4 Nr. 21 UStG", ""]

    invoice = make_draft_invoice(seller)
    before = line_values(fresh(invoice))
    with pytest.raises(ValidationError) as refused:
        fresh(invoice).add_line(seller, description="Exam", unit_price="250", tax_rate="19",
                                tax_exemption="§ 4 Nr. 21 UStG")
    assert NOT_TAXED in refused.value.fields["tax_exemption"] and line_values(fresh(invoice)) == before
    line = fresh(invoice).add_line(seller, description="Exam", unit_price="250", tax_rate="0",
                                   tax_exemption="§ 4 Nr. 21 UStG")
    with pytest.raises(ValidationError):
        fresh(invoice).update_line(seller, line.id, tax_rate="7", tax_exemption="§ 4 Nr. 14 UStG")
    assert type(line).get_by_id(line.id).tax_exemption == "§ 4 Nr. 21 UStG"
    # the line editor sends every field of the line: the unchanged exemption ends with the raised rate
    fresh(invoice).update_line(seller, line.id, tax_rate="7", tax_exemption="§ 4 Nr. 21 UStG")
    assert (type(line).get_by_id(line.id).tax_rate, type(line).get_by_id(line.id).tax_exemption) == (Decimal("7"), "")


def test_a_line_given_another_product_takes_its_vat_and_the_history_shows_the_ground(seller):
    exam = Product.create_product(seller, **EXAM)
    server = Product.create_product(seller, sku="SRV-1", name="Server", list_price="8950", tax_rate="19",
                                    supply="goods")
    invoice = make_draft_invoice(seller)
    line = fresh(invoice).add_line(seller, product=exam.id)
    assert events(invoice)[-1].change_map["line"] == [None, "1 × Certification exam fee @ 250.00, VAT exempt: "
                                                            "§ 4 Nr. 21 UStG, services"]
    fresh(invoice).update_line(seller, line.id, tax_exemption="§ 4 Nr. 22 UStG")
    assert events(invoice)[-1].change_map["line"][1].endswith("VAT exempt: § 4 Nr. 22 UStG, services")
    fresh(invoice).update_line(seller, line.id, product=server.id)
    line = type(line).get_by_id(line.id)
    assert (line.tax_rate, line.tax_exemption, line.supply) == (Decimal("19.00"), "", "goods")
    assert events(invoice)[-1].change_map["line"][1].endswith(", VAT 19 %, goods")
    # a rate sent along with another product does not keep the last product's supply
    fresh(invoice).update_line(seller, line.id, product=exam.id, tax_rate="0")
    line = type(line).get_by_id(line.id)
    assert (line.tax_rate, line.tax_exemption, line.supply) == (Decimal("0"), "§ 4 Nr. 21 UStG", "services")
    # nor the last product's ground: at a rate other than its own, the new product brings none
    fresh(invoice).update_line(seller, line.id, product=server.id, tax_rate="0")
    line = type(line).get_by_id(line.id)
    assert (line.tax_rate, line.tax_exemption, line.supply) == (Decimal("0"), "", "goods")


def test_goods_or_services_come_from_the_product_and_travel_with_the_line(seller):
    server = Product.create_product(seller, sku="SRV-1", name="Server", list_price="8950", supply="goods")
    assert Product.create_product(seller, sku="CON-1", name="Consulting", list_price="145").supply == "services"
    with pytest.raises(ValidationError) as refused:
        Product.create_product(seller, sku="X-1", name="X", list_price="1", supply="software")
    assert "Choose one of: services, goods." == refused.value.fields["supply"]
    with pytest.raises(ValidationError):
        fresh(server).update_fields(seller, supply="")
    invoice = make_draft_invoice(seller, lines=[{"product": server.id}, {"description": "Set-up", "unit_price": "90"}])
    for document in (invoice.order.quote, invoice.order, invoice):
        assert [line.supply for line in document.line_rows()] == ["goods", "services"], document
    assert fresh(invoice).add_line(seller, product=server.id, supply="services").supply == "services"
