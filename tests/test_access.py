"""Who may see and change what, through every route of the app.

The permission matrix walks the app's URL map: every route that names a record is requested by every
kind of user for a record of their own, of a teammate and of another team, and must answer with the
status the access rule (models/access.py) gives. A route whose arguments the matrix cannot fill
fails the test, so a new route cannot escape it.
"""
import pytest

from builders import make_draft_invoice, make_lead
from clients import PASSWORD, HtmxClient
from models import (Account, Activity, ApiToken, CaptureForm, Contact, ImportJob, Invoice, Lead, Opportunity, Order, Product, Quote,
                    SecurityEvent, Team, User, db)
from models.access import Forbidden, load

# Routes that name no record and are not about records, with why the matrix leaves them out.
EXEMPT = {"static": "public files", "health": "public health check", "favicon": "public icon", "auth.login": "public login form",
          "auth.logout": "ends the session the matrix runs in (tested in test_login_security)",
          "public.form": "public web-to-lead form (tests/test_capture.py)",
          "public.submit": "public web-to-lead endpoint (tests/test_capture.py)",
          "public.logo": "the logo on the public form page (tests/test_capture.py)",
          "api.unknown": "JSON 404/405 for addresses under /api/v1 that name no route (tests/test_api.py)"}
FIELD_NAMES = {"leads": "name", "opportunities": "topic", "accounts": "name", "contacts": "name",
               "quotes": "notes", "invoices": "notes", "products": "name", "orders": "notes"}
RECORD_ARGS = {"lead_id": "lead", "opportunity_id": "opportunity", "quote_id": "quote", "order_id": "order",
               "invoice_id": "invoice", "account_id": "account", "contact_id": "contact", "activity_id": "activity",
               "product_id": "product"}
BLUEPRINT_RECORDS = {"leads": "lead", "opportunities": "opportunity", "quotes": "quote", "orders": "order",
                     "invoices": "invoice", "accounts": "account", "contacts": "contact", "products": "product"}
# Routes that need their record in a given state: the e-invoice of an issued invoice, the credit note of a
# canceled one (an issued and then canceled invoice has both).
STATE_RECORDS = {endpoint: "credited" for endpoint in (
    "documents.credit_note_pdf", "documents.credit_note_xml", "documents.invoice_xml", "api.invoices_xml",
    "api.invoices_credit_note_pdf", "api.invoices_credit_note_xml")}
# Routes that take their record from the form instead of the URL.
FORM_RECORDS = {"board.move": "opportunity", "activities.create": "opportunity"}
QUERY_RECORDS = {"products.search": "opportunity"}
# Routes without a record whose answer is not simply 200 for everyone, and why.
SPECIAL = {"settings.save": "managers and admins change the settings",
           "settings.remove_logo": "managers and admins change the settings",
           "settings.logo": "404 while no logo is uploaded"}


def _world():
    """Two teams: North (sellers Sam and Sue, manager Max), South (seller Sid); admin Ada; Lou has no team.
    Sam, Sue and Sid each own a lead, and a deal with quote, order, draft invoice, account, contact, task,
    and an invoice canceled by a credit note."""
    north, south = Team.create(name="North"), Team.create(name="South")
    users = {
        "sam": User.create_user("sam@example.com", PASSWORD, "Sam Seller", "seller", team=north),
        "sue": User.create_user("sue@example.com", PASSWORD, "Sue Seller", "seller", team=north),
        "max": User.create_user("max@example.com", PASSWORD, "Max Manager", "manager", team=north),
        "sid": User.create_user("sid@example.com", PASSWORD, "Sid Seller", "seller", team=south),
        "ada": User.create_user("ada@example.com", PASSWORD, "Ada Admin", "admin"),
        "lou": User.create_user("lou@example.com", PASSWORD, "Lou Loner", "seller"),
    }
    records = {}
    product = Product.create_product(users["ada"], sku="P-1", name="Widget", list_price="10")
    form = CaptureForm.create_form(users["ada"], name="Website", thank_you="Thanks", source="web form")
    for owner in ("sam", "sue", "sid"):
        actor = users[owner]
        invoice = make_draft_invoice(actor, company=f"{owner.capitalize()} Corp", name=f"{owner.capitalize()} Buyer")
        deal = Opportunity.get_by_id(invoice.opportunity_id)
        quote = Quote.get(Quote.opportunity == deal.id)
        task = Activity.add(actor, deal, kind="task", subject=f"Call {owner}", due_date="2030-01-01")
        Invoice.get_by_id(invoice.id).issue(actor)
        credited = issue_and_cancel(actor, owner)
        records[owner] = {"credited": credited,"lead": make_lead(actor, name=f"{owner.capitalize()} Lead"), "opportunity": deal,
                          "quote": quote, "order": Order.get_by_id(invoice.order_id), "invoice": invoice,
                          "account": Account.get_by_id(deal.account_id), "contact": Contact.get_by_id(deal.contact_id),
                          "activity": task, "product": product, "form": form,
                          "import": ImportJob.create(owner=actor, filename=f"{owner}.csv")}
    return users, records


def issue_and_cancel(actor, owner):
    """An invoice of `owner`'s, issued and then canceled: voided by a credit note."""
    invoice = make_draft_invoice(actor, company=f"{owner.capitalize()} Returns", name=f"{owner.capitalize()} Buyer")
    Invoice.get_by_id(invoice.id).issue(actor)
    Invoice.get_by_id(invoice.id).cancel(actor, reason="Returned")
    return Invoice.get_by_id(invoice.id)


def _access(actor, owner):
    """(may see, may change) a record of `owner` for `actor`, as the rule says."""
    teams = {"sam": "North", "sue": "North", "max": "North", "sid": "South", "ada": None, "lou": None}
    if actor == "ada":
        return True, True
    if actor == owner:
        return True, True
    same_team = teams[actor] is not None and teams[actor] == teams[owner]
    if not same_team:
        return False, False
    return True, actor == "max"


def _line_id(kind, record):
    model = {"opportunity": Opportunity, "quote": Quote, "invoice": Invoice}.get(kind)
    rows = type(record).get_by_id(record.id).line_rows() if model else []
    return rows[0].id if rows else 1


def _url(rule, records):
    """The URL of `rule` for one owner's records, or None when the rule names no record."""
    args, kind = {}, None
    for name in rule.arguments:
        if name in RECORD_ARGS:
            kind = STATE_RECORDS.get(rule.endpoint, RECORD_ARGS[name])
            args[name] = records[kind].id
        elif name == "record_id":
            kind = BLUEPRINT_RECORDS.get(rule.endpoint.split(".")[0]) or "opportunity"
            args[name] = records[kind].id
        elif name == "kind":
            args[name] = "opportunity"
        elif name == "name":
            args[name] = FIELD_NAMES[rule.endpoint.split(".")[0]]
        elif name == "line_id":
            args[name] = None  # filled below, once the record is known
        elif name == "direction":
            args[name] = "down"
        elif name == "stage":
            args[name] = "develop"
        elif name == "job_id":  # an import: its owner's (and admins') only
            kind = "import"
            args[name] = records["import"].id
        elif name == "user_id":
            kind = "user"
            args[name] = records["lead"].owner_id
        elif name == "form_id":
            kind = "form"
            args[name] = records["form"].id
        else:
            pytest.fail(f"{rule.endpoint}: the permission matrix does not know URL argument {name!r}")
    if kind is None:
        return None, None
    if "line_id" in args:
        args["line_id"] = _line_id(kind, records[kind])
    path = rule.rule
    for name, value in args.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    return path, kind


def _clients(app):
    clients = {}
    for name in ("sam", "max", "ada", "lou"):
        client = HtmxClient(app.test_client())
        assert client.login(f"{name}@example.com").status_code == 302
        clients[name] = client
    return clients


class ApiClient:
    """JSON requests with a bearer token: the API (/api/v1) authenticates each request on its own."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def send(self, method, path, body=None):
        return self.client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {self.token}"})


def _api_clients(app):
    """A token client for each actor of _clients (API routes are requested with these instead)."""
    clients = {}
    with db.connection_context():
        for name in ("sam", "max", "ada", "lou"):
            _, token = ApiToken.issue(User.get(User.email == f"{name}@example.com"), "matrix")
            clients[name] = ApiClient(app.test_client(), token)
    return clients


def test_permission_matrix_every_record_route(app):
    with db.connection_context():
        users, records = _world()
    clients = _clients(app)
    api_clients = _api_clients(app)
    checked, api_checked, failures = 0, 0, []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXEMPT:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for owner in ("sam", "sue", "sid"):
                with db.connection_context():
                    path, kind = _url(rule, records[owner])
                form_kind = FORM_RECORDS.get(rule.endpoint) or QUERY_RECORDS.get(rule.endpoint)
                if path is None and form_kind is None:
                    continue
                for actor, client in clients.items():
                    api = api_clients[actor] if rule.endpoint.startswith("api.") else None
                    see, change = _access(actor, owner)
                    if kind == "product":
                        see, change = True, True  # the catalog is shared
                    if kind == "import":
                        see = change = actor in (owner, "ada")
                    if kind == "user":  # user administration: admins only
                        see, change = True, actor == "ada"
                    if kind == "form":  # web-to-lead forms: admins only, even to look at
                        see, change = True, actor == "ada"
                    data = {"version": "-1"}
                    if form_kind:
                        path = rule.rule
                    if rule.endpoint in FORM_RECORDS:
                        data.update(record=f"{form_kind}:{records[owner][form_kind].id}", to="develop",
                                    kind="note", subject="x")
                    if method == "GET":
                        resp = api.send("GET", path) if api else client.hx_get(
                            path + (f"?target={form_kind}:{records[owner][form_kind].id}&q=a"
                                    if rule.endpoint in QUERY_RECORDS else ""))
                        expected = "not 403/404/5xx" if see else "404"
                        ok = resp.status_code not in (403, 404) and resp.status_code < 500 if see \
                            else resp.status_code == 404
                        if kind == "form" and actor != "ada":
                            expected, ok = "403", resp.status_code == 403
                    else:
                        resp = api.send(method, path, {"version": -1}) if api else client.hx_post(path, data)
                        if not see:
                            expected, ok = "404", resp.status_code == 404
                        elif not change:
                            expected, ok = "403", resp.status_code == 403
                        else:
                            expected = "not 403/404/5xx"
                            ok = resp.status_code not in (403, 404) and resp.status_code < 500
                    checked += 1
                    api_checked += bool(api)
                    if not ok:
                        failures.append(f"{method} {path} ({rule.endpoint}) as {actor}, {owner}'s {kind or form_kind}: "
                                        f"{resp.status_code}, expected {expected}")
    assert not failures, "\n".join(failures[:40])
    assert checked > 700 and api_checked > 300


def test_routes_without_records_by_role(app):
    """Pages and forms not about one record: everyone who is logged in may use them, but the admin
    pages answer 403 to everyone except admins; no route answers 5xx to any role."""
    with db.connection_context():
        _world()
    clients = _clients(app)
    api_clients = _api_clients(app)
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in EXEMPT or rule.endpoint in FORM_RECORDS or rule.endpoint in QUERY_RECORDS \
                or rule.arguments - {"stage"}:
            continue
        path = rule.rule.replace("<stage>", "develop")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for actor, client in clients.items():
                if rule.endpoint.startswith("api."):  # token instead of session; an empty JSON body
                    resp = api_clients[actor].send(method, path, None if method == "GET" else {})
                else:
                    resp = client.hx_get(path) if method == "GET" else client.hx_post(path, {})
                resp.get_data()  # streamed answers (CSV exports, reports) run to their end in their request
                resp.close()
                admin_only = rule.endpoint.startswith(("admin.", "capture."))
                if admin_only and actor != "ada":
                    ok = resp.status_code == 403
                elif rule.endpoint.startswith("settings.") and method == "POST" and actor in ("sam", "lou"):
                    ok = resp.status_code == 403
                elif rule.endpoint == "settings.logo":
                    ok = resp.status_code == 404
                elif method == "GET":
                    ok = resp.status_code in (200, 302)
                else:
                    ok = resp.status_code < 500 and resp.status_code not in (403, 404)
                if not ok:
                    failures.append(f"{method} {path} as {actor}: {resp.status_code}")
    assert not failures, "\n".join(failures)


def test_lists_board_and_search_show_only_what_is_in_reach(app):
    with db.connection_context():
        _world()
    clients = _clients(app)
    pages = ["/board?old=1", "/leads?status=all", "/opportunities?status=all", "/accounts", "/contacts", "/quotes",
             "/orders", "/invoices", "/search?q=Corp", "/search?q=Lead"]
    expect = {"sam": {"Sam", "Sue"}, "max": {"Sam", "Sue"}, "ada": {"Sam", "Sue", "Sid"}, "lou": set()}
    for actor, client in clients.items():
        for page in pages:
            html = client.get(page).get_data(as_text=True)
            for owner in ("Sam", "Sue", "Sid"):
                shown = f"{owner} Corp" in html or f"{owner} Lead" in html
                assert shown == (owner in expect[actor]), f"{actor} on {page}: {owner} shown={shown}"


def test_board_totals_count_only_what_is_in_reach(app):
    from models.board import BoardFilter, column_headers
    with db.connection_context():
        users, _ = _world()
        for name, deals in (("sam", 2), ("max", 2), ("ada", 3), ("lou", 0)):
            headers = column_headers(BoardFilter.from_args({}, users[name]))
            assert headers["qualify"].count == deals, name
            # each owner's lead, invoiced deal and the deal whose invoice was canceled (back in Fulfill)
            assert sum(h.count for h in headers.values()) == deals * 3, name


def test_reassigning_owners(app):
    with db.connection_context():
        users, records = _world()
        lead = records["sam"]["lead"]
        with pytest.raises(Forbidden):
            Lead.get_by_id(lead.id).update_fields(users["sam"], owner=users["sue"].id)
        with pytest.raises(Forbidden):  # a manager only within the team
            Lead.get_by_id(lead.id).update_fields(users["max"], owner=users["sid"].id)
        assert Lead.get_by_id(lead.id).update_fields(users["max"], owner=users["sue"].id)
        assert Lead.get_by_id(lead.id).owner_id == users["sue"].id
        assert Lead.get_by_id(lead.id).update_fields(users["ada"], owner=users["sid"].id)
        # now in South: out of Sam's and Max's reach
        assert load(Lead, lead.id, users["sam"]) is None and load(Lead, lead.id, users["max"]) is None
        with pytest.raises(Forbidden):  # a seller cannot create a lead for someone else
            Lead.create_lead(users["sam"], name="For Sue", owner=users["sue"].id)
        unowned = Lead.create_lead(users["max"], name="Pool lead", owner=None)
        Lead.update(owner=None).where(Lead.id == unowned.id).execute()
        assert Lead.get_by_id(unowned.id).update_fields(users["lou"], owner=users["lou"].id)  # taken from the pool


def test_owner_field_offers_only_assignable_users(app):
    with db.connection_context():
        _, records = _world()
    clients = _clients(app)
    lead = records["sam"]["lead"]
    html = clients["max"].hx_get(f"/leads/{lead.id}/fields/owner/edit").get_data(as_text=True)
    assert "Sue Seller" in html and "Sid Seller" not in html
    html = clients["sam"].hx_get(f"/leads/{lead.id}/fields/owner/edit").get_data(as_text=True)
    assert "Sam Seller" in html and "Sue Seller" not in html


def test_admin_manages_users_and_teams(app):
    with db.connection_context():
        users, _ = _world()
    clients = _clients(app)
    admin = clients["ada"]
    page = admin.get("/admin/users").get_data(as_text=True)
    assert "Sid Seller" in page and "North" in page
    bad = admin.form_post("/admin/users", {"email": "new@example.com", "name": "New", "role": "seller", "password": "short"})
    assert bad.status_code == 422 and "at least 10 characters" in bad.get_data(as_text=True)
    with db.connection_context():
        assert not User.select().where(User.email == "new@example.com").exists()
    made = admin.form_post("/admin/users", {"email": "new@example.com", "name": "New Person", "role": "manager",
                                            "team": str(Team.get(Team.name == "South").id), "password": "a-fine-password-1"})
    assert made.status_code == 302
    with db.connection_context():
        new = User.get(User.email == "new@example.com")
        assert new.role == "manager" and new.team.name == "South"
    sid = users["sid"]
    sid_client = HtmxClient(app.test_client())
    sid_client.login("sid@example.com")
    assert sid_client.get("/board").status_code == 200
    changed = admin.form_post(f"/admin/users/{sid.id}", {"name": "Sid Seller", "role": "manager", "team": "", "active": ""})
    assert changed.status_code == 302
    with db.connection_context():
        fresh = User.get_by_id(sid.id)
        assert fresh.role == "manager" and fresh.team_id is None and not fresh.active
        kinds = {e.kind for e in SecurityEvent.select().where(SecurityEvent.user == sid.id)}
        assert {"user_role_changed", "user_team_changed", "user_active_changed"} <= kinds
    assert sid_client.get("/board").status_code == 302  # deactivated: the session is over
    assert admin.form_post("/admin/teams", {"name": "West"}).status_code == 302
    assert admin.form_post("/admin/teams", {"name": "West"}).status_code == 422
    own = admin.form_post(f"/admin/users/{users['ada'].id}", {"name": "Ada Admin", "role": "seller", "active": "1"})
    assert own.status_code == 302
    with db.connection_context():
        assert User.get_by_id(users["ada"].id).role == "admin"
    assert clients["max"].get("/admin/users").status_code == 403
    assert clients["max"].get("/admin/security").status_code == 403


def test_password_change_ends_other_sessions(app):
    with db.connection_context():
        _world()
    first, second = HtmxClient(app.test_client()), HtmxClient(app.test_client())
    first.login("sam@example.com")
    second.login("sam@example.com")
    first.refresh_token("/profile")
    wrong = first.form_post("/profile", {"current_password": "nope-nope-nope", "password": "another-fine-pass-2"})
    assert wrong.status_code == 422 and "not your current password" in wrong.get_data(as_text=True)
    weak = first.form_post("/profile", {"current_password": PASSWORD, "password": "password123"})
    assert weak.status_code == 422 and "too easy to guess" in weak.get_data(as_text=True)
    done = first.form_post("/profile", {"current_password": PASSWORD, "password": "another-fine-pass-2"})
    assert done.status_code == 200 and "other sessions have ended" in done.get_data(as_text=True)
    assert first.get("/board").status_code == 200
    assert second.get("/board").status_code == 302
    assert HtmxClient(app.test_client()).login("sam@example.com", "another-fine-pass-2").status_code == 302
    with db.connection_context():
        assert SecurityEvent.select().where(SecurityEvent.kind == "password_changed").count() == 1


def test_passwords_are_stored_as_scrypt_hashes_outside_the_test_suite():
    """The suite lowers the hash cost (conftest); the app as shipped hashes with scrypt."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", "from models.user import hash_password; "
                          "print(hash_password('correct horse battery'))"],
                         cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    assert out.startswith("scrypt:32768:8:1$")
    from werkzeug.security import check_password_hash
    assert check_password_hash(out, "correct horse battery") and not check_password_hash(out, "correct horse")


def test_login_security(app):
    with db.connection_context():
        _world()
    client = HtmxClient(app.test_client())
    for _ in range(5):
        assert client.login("sue@example.com", "wrong-password-x").status_code == 401
    blocked = client.login("sue@example.com")  # the right password, but the account is throttled
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.get_data(as_text=True)
    other = HtmxClient(app.test_client())
    assert other.login("sam@example.com").status_code == 302  # other accounts are not affected
    other.refresh_token("/board")
    assert other.form_post("/logout").status_code == 302
    assert other.get("/board").status_code == 302
    with db.connection_context():
        kinds = [e.kind for e in SecurityEvent.select().order_by(SecurityEvent.id)]
    assert kinds.count("login_failed") == 5 and "login_throttled" in kinds and "logout" in kinds
    assert "login" in kinds


def test_login_throttle_per_address(app):
    with db.connection_context():
        _world()
    client = HtmxClient(app.test_client())
    for n in range(20):
        client.login(f"nobody{n}@example.com", "wrong-password-x")
    assert client.login("sam@example.com").status_code == 429
    elsewhere = HtmxClient(app.test_client())
    resp = elsewhere.client.post("/login", data={"email": "sam@example.com", "password": PASSWORD},
                                 environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert resp.status_code in (302, 400)  # another address is not throttled (400: no CSRF token here)


def test_issue_and_cancel_of_invoices_are_in_the_security_log(app):
    with db.connection_context():
        users, records = _world()  # issues two invoices for each of Sam, Sue and Sid and cancels the second
        issued = list(SecurityEvent.select().where(SecurityEvent.kind == "invoice_issued").order_by(SecurityEvent.id))
        assert [e.actor_id for e in issued] == [users[n].id for n in ("sam", "sam", "sue", "sue", "sid", "sid")]
        invoice = Invoice.get_by_id(records["sam"]["invoice"].id)
        assert invoice.number in issued[0].detail
        before = SecurityEvent.select().where(SecurityEvent.kind == "invoice_canceled").count()
        invoice.cancel(users["max"], reason="Wrong address")
        canceled = SecurityEvent.select().where(SecurityEvent.kind == "invoice_canceled").order_by(
            SecurityEvent.id.desc()).first()
        assert before == 3 and canceled.actor_id == users["max"].id and "Wrong address" in canceled.detail
        assert invoice.number in canceled.detail and Invoice.get_by_id(invoice.id).credit_note.number in canceled.detail


def test_qualify_offers_and_links_only_customers_in_reach(app):
    """Duplicate matching on qualify looks only at the actor's reach, and a crafted account or contact id
    of another team is refused (nothing is linked or written)."""
    from models import RuleNotMet, ValidationError
    with db.connection_context():
        users, records = _world()
        sid = users["sid"]
        north_account, north_contact = records["sam"]["account"], records["sam"]["contact"]
        twin = make_lead(sid, name="Twin Buyer", company=north_account.name, email=north_contact.email,
                         budget_amount="100", purchase_timeframe="this quarter")
        assert twin.duplicate_matches(sid) == {"account": [], "contact": []}
        assert [a.id for a in twin.duplicate_matches(users["max"])["account"]] == [north_account.id]
        for inputs in ({"account": north_account.id, "contact": "new"},
                       {"account": "new", "contact": north_contact.id},
                       {"account": "99999999999999999999", "contact": "new"}):
            with pytest.raises(ValidationError):
                Lead.get_by_id(twin.id).qualify(sid, **inputs)
            assert Lead.get_by_id(twin.id).status == "open"
        own = make_lead(sid, name="Sid Again", company=records["sid"]["account"].name,
                        budget_amount="100", purchase_timeframe="this quarter")
        with pytest.raises(RuleNotMet) as asked:
            Lead.get_by_id(own.id).qualify(sid)
        assert "account" in asked.value.fields  # his own customer is offered as a duplicate
        deal = Lead.get_by_id(own.id).qualify(sid, account=records["sid"]["account"].id)
        assert deal.account_id == records["sid"]["account"].id
