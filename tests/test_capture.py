"""Web-to-lead: capture forms managed by admins, public pages and embedded snippets that create leads."""
import re

import pytest

from clients import PASSWORD, HtmxClient
from models import Activity, CaptureForm, HistoryEvent, Lead, Team, User, db
from models.capture import FORM_LIMIT, IP_LIMIT




@pytest.fixture
def admin(app):
    with db.connection_context():
        User.create_user("ada@example.com", PASSWORD, "Ada Admin", "admin")
    client = HtmxClient(app.test_client())
    assert client.login("ada@example.com").status_code == 302
    return client


@pytest.fixture
def team(app):
    """Team North with sellers Sal and Sue and manager Max (round-robin order: by user id)."""
    with db.connection_context():
        north = Team.create(name="North")
        members = [User.create_user(f"{n.lower()}@example.com", PASSWORD, f"{n} North", role, team=north.id)
                   for n, role in (("Sal", "seller"), ("Sue", "seller"), ("Max", "manager"))]
        User.create_user("old@example.com", PASSWORD, "Old North", "seller", team=north.id)
        User.update(active=False).where(User.email == "old@example.com").execute()
    return north, members


def _create(admin, **overrides):
    data = {"name": "Website contact", "thank_you": "Thanks, we will call you.", "source": "web form",
            "campaign": "spring-2026", "owner": "", "team": "", "fields": ["company", "phone", "notes"],
            "required": ["company"]}
    data.update(overrides)
    resp = admin.form_post("/admin/forms", data)
    return resp


def _form(admin, **overrides):
    resp = _create(admin, **overrides)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1000]
    form_id = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    with db.connection_context():
        return CaptureForm.get_by_id(form_id)


def _visitor(app, ip="198.51.100.7"):
    """An anonymous browser on another address (no session, no CSRF token)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def _counts():
    with db.connection_context():
        return Lead.select().count(), Activity.select().count(), HistoryEvent.select().count()


def test_admin_defines_a_form_and_gets_link_and_snippet(admin, team):
    north, _ = team
    form = _form(admin, team=str(north.id))
    assert form.field_list == ["name", "email", "company", "phone", "notes"]
    assert form.required_list == ["name", "email", "company"]
    page = admin.get(f"/admin/forms/{form.id}").get_data(as_text=True)
    assert f"/f/{form.key}" in page and re.search(r'<option value="%d" selected>North</option>' % north.id, page)
    assert "&lt;form action=" in page  # the snippet is shown as text, escaped
    listing = admin.get("/admin/forms").get_data(as_text=True)
    assert "Website contact" in listing and "round-robin over team North" in listing


@pytest.mark.parametrize("overrides, field", [
    ({"name": ""}, "name"),
    ({"thank_you": ""}, "thank_you"),
    ({"source": "carrier pigeon"}, "source"),
    ({"campaign": "x" * 81}, "campaign"),
    ({"fields": ["password_hash"]}, "fields"),
    ({"owner": "999999"}, "owner"),
    ({"team": "999999"}, "team"),
])
def test_bad_form_definitions_are_refused_at_the_field(admin, overrides, field):
    resp = _create(admin, **overrides)
    assert resp.status_code == 422
    assert re.search(r'class="field-error"', resp.get_data(as_text=True))
    with db.connection_context():
        assert CaptureForm.select().count() == 0


def test_owner_and_team_together_and_an_empty_team_are_refused(admin, team):
    north, members = team
    assert _create(admin, owner=str(members[0].id), team=str(north.id)).status_code == 422
    with db.connection_context():
        empty = Team.create(name="Empty")
    assert _create(admin, team=str(empty.id)).status_code == 422


def test_only_admins_manage_forms(app, admin, team, logged_in):
    form = _form(admin)
    for path in ("/admin/forms", f"/admin/forms/{form.id}"):
        assert logged_in.get(path).status_code == 403
    assert logged_in.form_post("/admin/forms", {"name": "Mine", "thank_you": "x", "source": "web form"}).status_code == 403
    assert logged_in.form_post(f"/admin/forms/{form.id}", {"name": "Hijack", "thank_you": "x",
                                                          "source": "web form"}).status_code == 403
    with db.connection_context():
        assert CaptureForm.get_by_id(form.id).name == "Website contact"
    assert admin.client.post("/admin/forms", data={"name": "No token", "thank_you": "x"}).status_code == 400


def test_public_page_needs_no_login_and_sets_no_cookie(app, admin):
    form = _form(admin)
    resp = _visitor(app).get(f"/f/{form.key}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Set-Cookie" not in resp.headers
    assert 'name="company"' in html and 'name="website_url"' in html and 'name="budget_amount"' not in html
    assert resp.headers["Cache-Control"] == "no-store"
    assert _visitor(app).get("/f/not-a-form-key").status_code == 404
    admin.form_post(f"/admin/forms/{form.id}", {"name": form.name, "thank_you": form.thank_you, "source": "web form",
                                                "fields": ["company"], "active": ""})
    assert _visitor(app).get(f"/f/{form.key}").status_code == 404
    assert _visitor(app).post(f"/f/{form.key}", data={"name": "A", "email": "a@x.example", "company": "A"}).status_code == 404


def test_submissions_become_leads_in_qualify_round_robin_over_the_team(app, admin, team):
    north, members = team
    form = _form(admin, team=str(north.id))
    owners = []
    for i in range(4):
        resp = _visitor(app, ip=f"198.51.100.{i}").post(f"/f/{form.key}", data={
            "name": f"Vera Visitor {i}", "email": f"vera{i}@example.org", "company": f"Visit {i} AG",
            "phone": "+49 40 123", "notes": "Please call me about fleet tracking.", "website_url": ""})
        assert resp.status_code == 200 and "Thanks, we will call you." in resp.get_data(as_text=True)
        with db.connection_context():
            lead = Lead.get(Lead.email == f"vera{i}@example.org")
            assert (lead.status, lead.source, lead.campaign) == ("open", "web form", "spring-2026")
            assert lead.notes == "Please call me about fleet tracking."
            event = HistoryEvent.get((HistoryEvent.record_type == "lead") & (HistoryEvent.record_id == lead.id))
            assert (event.action, event.to_stage, event.actor_id) == ("create", "qualify", None)
            assert event.note == "Web form: Website contact"
            owners.append(lead.owner_id)
    ids = [m.id for m in members]
    assert owners == ids + ids[:1]  # the deactivated member is skipped; the fourth wraps around
    with db.connection_context():
        assert CaptureForm.get_by_id(form.id).submissions == 4
    # the lead is on its owner's board, in Qualify
    seller = HtmxClient(app.test_client())
    seller.login("sal@example.com")
    assert "Vera Visitor 0" in seller.get("/board").get_data(as_text=True)


def test_single_owner_and_unassigned_forms(app, admin, team):
    _, members = team
    owned = _form(admin, owner=str(members[1].id))
    nobody = _form(admin, name="Newsletter")
    _visitor(app).post(f"/f/{owned.key}", data={"name": "O", "email": "o@example.org", "company": "O"})
    _visitor(app).post(f"/f/{nobody.key}", data={"name": "N", "email": "n@example.org", "company": "N"})
    with db.connection_context():
        assert Lead.get(Lead.email == "o@example.org").owner_id == members[1].id
        assert Lead.get(Lead.email == "n@example.org").owner_id is None


@pytest.mark.parametrize("data, fields", [
    ({"name": "", "email": "a@x.example", "company": "A"}, {"name"}),
    ({"name": "A", "email": "", "company": "A"}, {"email"}),
    ({"name": "A", "email": "not-an-email", "company": "A"}, {"email"}),
    ({"name": "A", "email": "a@x.example", "company": ""}, {"company"}),
    ({"name": "A" * 201, "email": "a@x.example", "company": "A"}, {"name"}),
    ({"name": "A", "email": "a@x.example", "company": "A", "phone": "call me maybe!!"}, {"phone"}),
    ({}, {"name", "email", "company"}),
])
def test_bad_submissions_say_which_field_and_write_nothing(app, admin, data, fields):
    form = _form(admin)
    before = _counts()
    resp = _visitor(app).post(f"/f/{form.key}", data=data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    for field in fields:
        assert f'id="f-{field}-error"' in html, field
    assert _counts() == before


def test_echoed_input_is_escaped(app, admin):
    form = _form(admin)
    resp = _visitor(app).post(f"/f/{form.key}", data={"name": '<script>alert(1)</script>" hx-get="/logout',
                                                      "email": "bad", "company": "<b>x</b>"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "<script>alert(1)</script>" not in html and '" hx-get="/logout' not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;" in html


def test_honeypot_is_thanked_and_dropped(app, admin):
    form = _form(admin)
    before = _counts()
    resp = _visitor(app).post(f"/f/{form.key}", data={"name": "Bot", "email": "bot@spam.example", "company": "Spam",
                                                      "website_url": "http://cheap-pills.example"})
    assert resp.status_code == 200 and "Thanks, we will call you." in resp.get_data(as_text=True)
    assert _counts() == before
    with db.connection_context():
        assert CaptureForm.get_by_id(form.id).spam == 1


def test_rate_limit_per_address_holds_and_others_still_get_through(app, admin):
    form = _form(admin)
    visitor = _visitor(app, ip="203.0.113.9")
    for i in range(IP_LIMIT):
        assert visitor.post(f"/f/{form.key}", data={"name": f"R{i}", "email": f"r{i}@example.org",
                                                    "company": "R"}).status_code == 200
    before = _counts()
    blocked = visitor.post(f"/f/{form.key}", data={"name": "Again", "email": "again@example.org", "company": "R"})
    assert blocked.status_code == 429 and "Too many submissions" in blocked.get_data(as_text=True)
    assert _counts() == before
    assert _visitor(app, ip="203.0.113.10").post(f"/f/{form.key}", data={
        "name": "Other", "email": "other@example.org", "company": "O"}).status_code == 200
    assert FORM_LIMIT > IP_LIMIT


def test_a_repeat_visitor_is_added_to_the_open_lead(app, admin, user):
    form = _form(admin)
    with db.connection_context():
        existing = Lead.create_lead(User.get_by_id(user.id), name="Known Person", email="Known@Example.org",
                                    company="Known GmbH")
    resp = _visitor(app).post(f"/f/{form.key}", data={"name": "Known Person", "email": "known@example.org",
                                                      "company": "Known GmbH", "phone": "+49 89 555",
                                                      "notes": "We now also need 20 licences."})
    assert resp.status_code == 200
    with db.connection_context():
        assert Lead.select().count() == 1
        activity = Activity.get((Activity.record_type == "lead") & (Activity.record_id == existing.id))
        assert activity.subject == "Web form again: Website contact"
        assert "We now also need 20 licences." in activity.body and "+49 89 555" in activity.body
        assert Lead.get_by_id(existing.id).last_activity_at is not None
        assert CaptureForm.get_by_id(form.id).duplicates == 1
        # a lead that is no longer open does not swallow new interest
        Lead.update(status="disqualified").where(Lead.id == existing.id).execute()
    _visitor(app).post(f"/f/{form.key}", data={"name": "Known Person", "email": "known@example.org",
                                               "company": "Known GmbH"})
    with db.connection_context():
        assert Lead.select().where(Lead.status == "open").count() == 1


def test_the_embedded_snippet_posts_a_lead_without_a_session(app, admin):
    """What a website pastes: the snippet's own fields, posted from another origin without cookies or token."""
    form = _form(admin, fields=["company", "phone", "notes", "purchase_timeframe", "budget_amount"])
    import html as html_lib
    page = admin.get(f"/admin/forms/{form.id}").get_data(as_text=True)
    snippet = html_lib.unescape(re.search(r'<textarea id="snippet"[^>]*>(.*?)</textarea>', page, re.S).group(1))
    assert snippet.startswith(f'<form action="http://localhost/f/{form.key}" method="post"')
    assert snippet.rstrip().endswith("</form>") and "<script" not in snippet
    names = re.findall(r'name="([a-z_]+)"', snippet)
    assert names == ["name", "email", "company", "phone", "budget_amount", "purchase_timeframe", "notes",
                     "website_url"]
    values = {"name": "Emil Embedded", "email": "emil@example.org", "company": "Embed AG", "phone": "+43 1 555",
              "budget_amount": "12.500,00", "purchase_timeframe": "this quarter", "notes": "From the website",
              "website_url": ""}
    resp = _visitor(app).post(f"/f/{form.key}", data={n: values[n] for n in names},
                              headers={"Origin": "https://www.customer-site.example"})
    assert resp.status_code in (200, 422)
    if resp.status_code == 422:  # the decimal comma is not this app's money format: the page says so
        assert 'id="f-budget_amount-error"' in resp.get_data(as_text=True)
        values["budget_amount"] = "12500.00"
        resp = _visitor(app).post(f"/f/{form.key}", data={n: values[n] for n in names})
    assert resp.status_code == 200
    with db.connection_context():
        lead = Lead.get(Lead.email == "emil@example.org")
        assert (lead.purchase_timeframe, str(lead.budget_amount)) == ("this quarter", "12500.00")


def test_public_page_shows_the_company_logo_while_the_form_is_live(app, admin):
    form = _form(admin)
    visitor = _visitor(app)
    assert f"/f/{form.key}/logo" not in visitor.get(f"/f/{form.key}").get_data(as_text=True)
    assert visitor.get(f"/f/{form.key}/logo").status_code == 404  # no logo yet
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>'
    with db.connection_context():
        from models import Settings
        settings = Settings.load()
        actor = User.get(User.email == "ada@example.com")
        assert settings.save_changes(actor, {**{k: getattr(settings, k) for k in (
            "company_name", "address", "vat_id", "bank_details", "payment_terms_text", "email", "phone",
            "currency", "quote_validity_days", "payment_terms_days", "rot_days_develop", "rot_days_propose",
            "rot_days_close")}}, logo=svg)
    assert f'src="/f/{form.key}/logo"' in visitor.get(f"/f/{form.key}").get_data(as_text=True)
    served = visitor.get(f"/f/{form.key}/logo")
    assert served.status_code == 200 and served.data == svg and served.headers["Content-Type"] == "image/svg+xml"
    admin.form_post(f"/admin/forms/{form.id}", {"name": form.name, "thank_you": form.thank_you, "source": "web form",
                                                "fields": ["company"], "active": ""})
    assert visitor.get(f"/f/{form.key}/logo").status_code == 404
