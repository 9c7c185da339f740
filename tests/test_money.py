"""Money (DESIGN.md §2 "Lines and money"): Decimal everywhere, half-up at the line, exact sums in SQL."""
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from peewee import fn

from builders import events, fresh, make_lead, snapshot, world_counts
from models import Lead, Opportunity, ValidationError
from models.base import FixedDecimalField, MoneyField, PercentField, QuantityField, parse_decimal
from models.lines import LineBase
from models.money import document_totals, line_net, line_tax, round_money
from models.validation import Cleaner

TAX_RATES = ["0", "5.5", "7", "19", "20", "8.1"]

line_strategy = st.fixed_dictionaries({
    "quantity_milli": st.integers(min_value=1, max_value=100_000_000),      # 0.001 .. 100 000.000
    "price_cents": st.integers(min_value=0, max_value=100_000_000),         # 0.00 .. 1 000 000.00
    "discount_bp": st.one_of(st.just(0), st.just(10_000), st.integers(0, 10_000)),  # 0.00 .. 100.00 %
    "tax_rate": st.sampled_from(TAX_RATES),
})


def as_inputs(spec):
    """The line as a user types it: strings with the field's number of decimals."""
    return {"description": "Item", "quantity": str(Decimal(spec["quantity_milli"]).scaleb(-3)),
            "unit_price": str(Decimal(spec["price_cents"]).scaleb(-2)),
            "discount_pct": str(Decimal(spec["discount_bp"]).scaleb(-2)), "tax_rate": spec["tax_rate"]}


def as_line(spec):
    values = as_inputs(spec)
    return SimpleNamespace(**{k: Decimal(values[k]) for k in ("quantity", "unit_price", "discount_pct", "tax_rate")})


def half_up_div(numerator, denominator):
    """Integer division rounding half up (non-negative operands): an oracle independent of Decimal."""
    return (2 * numerator + denominator) // (2 * denominator)


def expected_cents(spec):
    """Line net and tax in cents, computed in integers: qty[milli] × price[cents] × (1 − disc[bp])."""
    net = half_up_div(spec["quantity_milli"] * spec["price_cents"] * (10_000 - spec["discount_bp"]), 1000 * 10_000)
    rate_bp = int(Decimal(spec["tax_rate"]) * 100)
    tax = half_up_div(net * rate_bp, 10_000)
    return net, tax


def cents(value):
    return Decimal(value).scaleb(-2)


def assert_decimal(*values):
    for value in values:
        assert type(value) is Decimal, (value, type(value))


@settings(max_examples=150, deadline=None)
@given(st.lists(line_strategy, min_size=0, max_size=12))
def test_document_totals_are_sums_of_half_up_rounded_lines(specs):
    totals = document_totals([as_line(s) for s in specs])
    per_line = [expected_cents(s) for s in specs]
    assert totals.net == cents(sum(n for n, _ in per_line))
    assert totals.tax == cents(sum(t for _, t in per_line))
    assert totals.gross == totals.net + totals.tax
    assert sum(b[0] for b in totals.by_rate.values()) == totals.net
    assert sum(b[1] for b in totals.by_rate.values()) == totals.tax
    for rate, (net, tax) in totals.by_rate.items():
        same_rate = [c for s, c in zip(specs, per_line) if Decimal(s["tax_rate"]) == rate]
        assert (net, tax) == (cents(sum(n for n, _ in same_rate)), cents(sum(t for _, t in same_rate)))
    assert set(totals.by_rate) == {Decimal(s["tax_rate"]) for s in specs}
    assert list(totals.by_rate) == sorted(totals.by_rate)
    assert_decimal(totals.net, totals.tax, totals.gross, *totals.by_rate,
                   *(v for b in totals.by_rate.values() for v in b))
    for net, tax in (b for b in totals.by_rate.values()):
        assert net == net.quantize(Decimal("0.01")) and tax == tax.quantize(Decimal("0.01"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(line_strategy, min_size=1, max_size=5))
def test_lines_saved_and_read_back_are_exact_decimals(seller, specs):
    opportunity = Opportunity.create(topic="Money", owner=seller)
    for spec in specs:
        opportunity.add_line(seller, **as_inputs(spec))
    stored = fresh(opportunity)
    lines = stored.line_rows()
    per_line = [expected_cents(s) for s in specs]
    assert len(lines) == len(specs)
    for line, spec, (net, tax) in zip(lines, specs, per_line):
        typed = as_inputs(spec)
        assert_decimal(line.quantity, line.unit_price, line.discount_pct, line.tax_rate, line.net, line.tax, line.gross)
        assert (line.quantity, line.unit_price, line.discount_pct, line.tax_rate) == tuple(
            Decimal(typed[k]) for k in ("quantity", "unit_price", "discount_pct", "tax_rate"))
        assert (line.net, line.tax) == (cents(net), cents(tax))
    assert_decimal(stored.net_total, stored.tax_total, stored.gross_total, stored.estimated_revenue)
    assert stored.net_total == cents(sum(n for n, _ in per_line))
    assert stored.tax_total == cents(sum(t for _, t in per_line))
    assert stored.gross_total == stored.net_total + stored.tax_total
    assert stored.estimated_revenue == stored.net_total
    assert stored.totals().net == stored.net_total


# ----- half-up ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, rounded", [
    ("0.005", "0.01"), ("2.675", "2.68"), ("0.125", "0.13"), ("1.004999", "1.00"), ("0.015", "0.02"),
])
def test_round_money_is_half_up(value, rounded):
    assert round_money(Decimal(value)) == Decimal(rounded)
    assert parse_decimal(Decimal(value)) == Decimal(rounded)  # computed values are rounded
    with pytest.raises(ValueError, match="at most 2 decimal places"):
        parse_decimal(value)  # typed ones are not changed behind the user's back


@pytest.mark.parametrize("quantity, price, discount, rate, net, tax", [
    pytest.param("0.5", "0.01", "0", "0", "0.01", "0.00", id="half a cent rounds up"),
    pytest.param("0.5", "0.25", "0", "0", "0.13", "0.00", id="0.125 rounds up not to even"),
    pytest.param("1.5", "1.45", "0", "0", "2.18", "0.00", id="2.175 rounds up"),
    pytest.param("1", "0.99", "50", "0", "0.50", "0.00", id="discount to 0.495 rounds up"),
    pytest.param("1", "0.50", "0", "1", "0.50", "0.01", id="tax of 0.005 rounds up"),
    pytest.param("3", "33.33", "0", "19", "99.99", "19.00", id="tax rounded on the line"),
])
def test_half_up_at_the_line_through_the_database(seller, quantity, price, discount, rate, net, tax):
    opportunity = Opportunity.create(topic="Rounding", owner=seller)
    line = opportunity.add_line(seller, description="Item", quantity=quantity, unit_price=price,
                                discount_pct=discount, tax_rate=rate)
    line = type(line).get_by_id(line.id)
    assert (line.net, line.tax) == (Decimal(net), Decimal(tax))
    assert (line_net(quantity, price, discount), line_tax(Decimal(net), rate)) == (Decimal(net), Decimal(tax))
    stored = fresh(opportunity)
    assert (stored.net_total, stored.tax_total) == (Decimal(net), Decimal(tax))


def test_totals_are_sums_of_rounded_lines_not_rounded_sums(seller):
    opportunity = Opportunity.create(topic="Three halves", owner=seller)
    for _ in range(3):
        opportunity.add_line(seller, description="Half a cent", quantity="0.5", unit_price="0.01", tax_rate="0")
    assert fresh(opportunity).net_total == Decimal("0.03")


# ----- the fields refuse floats and keep integers in the database ------------------------------------------------

@pytest.mark.parametrize("field", [MoneyField(), PercentField(), QuantityField(), FixedDecimalField(4)],
                         ids=["money", "percent", "quantity", "4 places"])
def test_fixed_decimal_fields_refuse_floats(field):
    with pytest.raises(TypeError):
        field.db_value(0.1)
    with pytest.raises(TypeError):
        field.db_value(1.0)
    assert type(field.db_value(Decimal("1.5"))) is int
    assert field.python_value(field.db_value(Decimal("12.5"))) == Decimal("12.5")
    assert_decimal(field.python_value(field.db_value(Decimal("12.5"))))


def test_a_float_never_reaches_the_database(seller):
    before = world_counts()
    with pytest.raises(TypeError):
        Opportunity.create(topic="Float", owner=seller, estimated_revenue=0.1)
    opportunity = Opportunity.create(topic="Decimal", owner=seller)
    with pytest.raises(TypeError):
        Opportunity.update(estimated_revenue=19.99).where(Opportunity.id == opportunity.id).execute()
    assert fresh(opportunity).estimated_revenue == Decimal("0.00")
    assert world_counts()["Opportunity"] == before["Opportunity"] + 1


def test_money_is_stored_as_integer_minor_units(seller):
    opportunity = Opportunity.create(topic="Cents", owner=seller, estimated_revenue=Decimal("1234.56"))
    raw = Opportunity.select(Opportunity.estimated_revenue.coerce(False)).where(
        Opportunity.id == opportunity.id).scalar()
    assert raw == 123456
    assert type(raw) is int


@pytest.mark.parametrize("amounts, total", [
    pytest.param(["0.10"] * 1000, "100.00", id="1000 x 0.10"),
    pytest.param(["1234567890.22"] * 1000, "1234567890220.00", id="1000 x 1234567890.22"),
    pytest.param(["0.10"] * 500 + ["1234567890.22", "0.01"] * 250, "308641972607.50", id="mixed"),
])
def test_sql_sum_read_through_the_field_is_exact(seller, amounts, total):
    Opportunity.insert_many([{"topic": f"Deal {i}", "owner": seller.id, "estimated_revenue": Decimal(a),
                              "column": "develop", "probability": 20}
                             for i, a in enumerate(amounts)]).execute()
    field = Opportunity.estimated_revenue
    summed = Opportunity.select(fn.SUM(field).coerce(True).python_value(field.python_value)).scalar()
    assert summed == Decimal(total)
    assert_decimal(summed)
    count, column_total, weighted = Opportunity.column_stats()["develop"]
    assert count == len(amounts)
    assert column_total == Decimal(total)
    assert weighted == round_money(Decimal(total) * Decimal("0.20"))
    assert_decimal(column_total, weighted)


# ----- bad numbers are refused with a message, nothing written ---------------------------------------------------

BAD_NUMBERS = ["1e999", "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "12,3,4", "1" * 40, "1." + "0" * 39,
               "12abc", "--1", "0x10"]


@pytest.mark.parametrize("text", BAD_NUMBERS)
def test_parse_decimal_refuses_with_a_message(text):
    with pytest.raises(ValueError) as info:
        parse_decimal(text)
    assert str(info.value).strip()


@pytest.mark.parametrize("value", [0.1, float("nan"), float("inf"), None, [], True],
                         ids=["float", "float nan", "float inf", "none", "list", "bool"])
def test_parse_decimal_refuses_non_numbers(value):
    with pytest.raises(ValueError):
        parse_decimal(value)


@pytest.mark.parametrize("text, expected", [
    ("1250.50", "1250.50"), (" 1 250,5 ", "1250.50"), ("1250", "1250.00"), ("0", "0.00"),
    ("999999999999", "999999999999.00"), ("1,150.00", "1150.00"),
    ("1.250,50", "1250.50"), ("1,250,000", "1250000.00"), ("1.250.000", "1250000.00"), ("1'250.50", "1250.50"),
    ("12,5", "12.50"), ("0,12", "0.12"), ("-1,250.5", "-1250.50"), ("0.500", "0.50"), ("0,500", "0.50"), ("€ 1,150.00", "1150.00"), ("1.150,00 EUR", "1150.00"), ("CHF 12.50", "12.50"),
    ("1\u202f250,50", "1250.50"),
])
def test_parse_decimal_accepts_ordinary_numbers(text, expected):
    """As the documents print them (1,150.00), with a decimal comma (12,5), grouped either way."""
    value = parse_decimal(text)
    assert value == Decimal(expected)
    assert value.as_tuple().exponent == -2


@pytest.mark.parametrize("text, places, message", [
    ("1,150", 2, "1,150 could be 1150 or 1.15"), ("12,500", 2, "12500 or 12.5"), ("1,500", 3, "1500 or 1.5"),
    ("0.0725", 2, "at most 2 decimal places"), ("0.0005", 3, "at most 3 decimal places"),
    ("1,234,56", 2, "such as 1250.50"), ("1,2.5", 2, "such as 1250.50"), ("12.5,3", 2, "such as 1250.50"),
    ("1.250", 2, "1.250 could be 1250 or 1.25"), ("-1,150", 2, "could be -1150 or -1.15"),
    ("2.125", 2, r"at most 2 decimal places \(for 2125"), ("²,150", 2, "such as 1250.50"),
    ("1,²³⁴", 2, "such as 1250.50"), ("①,150", 3, "such as 1250.50"), ("١٢٣", 2, "such as 1250.50"),
    ("1e3", 2, "such as 1250.50"), ("12 EURO", 2, "such as 1250.50"), ("€€12", 2, "such as 1250.50"),
])
def test_typed_numbers_that_could_be_misread_are_refused_not_guessed(text, places, message):
    """A comma before three digits may group thousands (as the documents print 1,150.00) or be a decimal
    comma: refused rather than guessed 1000 times too small; digits the field cannot keep are refused
    rather than rounded away (a unit price of 0.0725 is not silently 0.07)."""
    with pytest.raises(ValueError, match=message):
        parse_decimal(text, places)


BAD_LINE_VALUES = {
    "quantity": BAD_NUMBERS + ["-1", "0", "-0.5", "0.0001", "1000000001", 0.5, "1,500"],
    "unit_price": BAD_NUMBERS + ["-0.01", "10000000000000", 0.1, "1,150", "0.0725"],
    "discount_pct": ["100.5", "-1", "NaN", "1e999", "12,3,4"],
    "tax_rate": ["-7", "Infinity", "1e999", "sNaN", "101"],
}


@pytest.mark.parametrize("field", list(BAD_LINE_VALUES))
def test_a_bad_line_number_is_refused_and_nothing_is_written(seller, field):
    opportunity = Opportunity.create(topic="Bad input", owner=seller)
    line = opportunity.add_line(seller, description="Good line", quantity="1", unit_price="10.00")
    before = snapshot(opportunity)
    for text in BAD_LINE_VALUES[field]:
        values = {"description": "Item", "quantity": "1", "unit_price": "5.00", field: text}
        with pytest.raises(ValidationError) as info:
            fresh(opportunity).add_line(seller, **values)
        assert set(info.value.fields) == {field}, text
        assert info.value.fields[field].strip(), text
        with pytest.raises(ValidationError) as info:
            fresh(opportunity).update_line(seller, line.id, **{field: text})
        assert set(info.value.fields) == {field}, text
        assert snapshot(opportunity) == before, text


def test_a_bad_budget_is_refused_and_no_lead_is_written(seller):
    lead = make_lead(seller, budget_amount="100")
    before = world_counts()
    for text in ["1e999", "NaN", "Infinity", "12,3,4", "9" * 40, "-100", 100.5]:
        with pytest.raises(ValidationError) as info:
            make_lead(seller, budget_amount=text)
        assert set(info.value.fields) == {"budget_amount"}, text
        with pytest.raises(ValidationError) as info:
            fresh(lead).update_fields(seller, budget_amount=text)
        assert set(info.value.fields) == {"budget_amount"}, text
        assert world_counts() == before, text
    assert fresh(lead).budget_amount == Decimal("100.00")
    assert len(events(lead)) == 1


@pytest.mark.parametrize("text", ["1e999", "NaN", "Infinity", "12,3,4", "1" * 40])
def test_cleaner_names_the_field(text):
    c = Cleaner({"amount": text})
    c.money("amount")
    with pytest.raises(ValidationError) as info:
        c.raise_if_errors()
    assert set(info.value.fields) == {"amount"}
    assert info.value.fields["amount"].strip()


def test_a_line_too_large_for_the_totals_is_a_validation_error(seller):
    """Each number is within its own limit, but their product does not fit in the money columns."""
    opportunity = Opportunity.create(topic="Huge", owner=seller)
    before = snapshot(opportunity)
    with pytest.raises(ValidationError) as info:
        opportunity.add_line(seller, description="Everything", quantity="1000000000", unit_price="1000000000000")
    assert set(info.value.fields) & {"quantity", "unit_price"}
    assert snapshot(opportunity) == before


def test_line_clean_gives_decimals_with_the_field_places():
    values = LineBase.clean({"description": "x", "quantity": "1,5", "unit_price": "10", "discount_pct": "2.5",
                             "tax_rate": "19"})
    assert values["quantity"] == Decimal("1.500") and values["quantity"].as_tuple().exponent == -3
    assert values["unit_price"].as_tuple().exponent == -2
    assert_decimal(values["quantity"], values["unit_price"], values["discount_pct"], values["tax_rate"])


def test_lead_budget_round_trips_as_decimal(seller):
    lead = make_lead(seller, budget_amount="1234567890.22")
    stored = Lead.get_by_id(lead.id)
    assert stored.budget_amount == Decimal("1234567890.22")
    assert_decimal(stored.budget_amount)
    opportunity = fresh(lead.qualify(seller))
    assert opportunity.estimated_revenue == Decimal("1234567890.22")
    assert_decimal(opportunity.estimated_revenue)
