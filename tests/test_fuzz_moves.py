"""Hostile input on the move endpoint and quick-create: never a 500, nothing written on refusal."""
from hypothesis import HealthCheck, given, settings, strategies as st

from models import HistoryEvent, Lead, Opportunity, User, db

NASTY = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "12,3,4", "9" * 40, "-5", "0", "<script>alert(1)</script>",
                     '" hx-get="/logout', "lead:", "lead:-1", "opportunity:0", "lead:1 OR 1=1", "\x00", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
                     "2026-02-30", "x" * 5000]),
)
FIELDS = ["record", "to", "version", "budget_amount", "purchase_timeframe", "email", "phone", "company", "account",
          "contact", "estimated_close_date", "line_product", "line_quantity", "line_unit_price", "line_description",
          "actual_revenue", "actual_close_date", "close_reason", "competitor", "activate_quote", "valid_until"]


def _counts():
    with db.connection_context():
        return (Lead.select().count(), Opportunity.select().count(), HistoryEvent.select().count())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(FIELDS), NASTY, max_size=8))
def test_move_endpoint_never_500(logged_in, user, data):
    with db.connection_context():
        if not Lead.select().exists():
            Lead.create_lead(User.get_by_id(user.id), name="Target", company="T GmbH", email="t@t.example")
    data.setdefault("record", "lead:1")
    before = _counts()
    resp = logged_in.hx_post("/board/move", data)
    assert resp.status_code < 500, resp.get_data(as_text=True)[:500]
    body = resp.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in body
    if resp.status_code >= 400:
        assert _counts() == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(st.sampled_from(["name", "company", "email", "phone", "topic", "budget_amount"]), NASTY,
                            max_size=6))
def test_quick_create_never_500(logged_in, data):
    before = _counts()
    resp = logged_in.hx_post("/leads", data)
    assert resp.status_code in (201, 422), resp.get_data(as_text=True)[:500]
    assert "<script>alert(1)</script>" not in resp.get_data(as_text=True)
    if resp.status_code == 422:
        assert _counts() == before
