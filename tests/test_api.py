"""The JSON API (/api/v1): tokens, reach per role, versions (ETag / If-Match), every error status, the sales
process through moves and document actions, and a schemathesis run against the app's own OpenAPI document."""
import hashlib
import datetime
import json
import time

import pytest

from builders import LINE, lead_data, make_closing, make_draft_invoice, make_lead, make_opportunity, world_counts
from clients import PASSWORD, HtmxClient
from models import (Account, ApiToken, Contact, HistoryEvent, Invoice, Lead, Opportunity, Product, Quote, SecurityEvent, Team,
                    User, db)
from models.base import today

API = "/api/v1"


class Api:
    """A client that sends JSON with a bearer token (and nothing else: no cookies are set by the API)."""

    def __init__(self, app, token):
        self.client = app.test_client(use_cookies=False)
        self.token = token

    def call(self, method, path, body=None, headers=None, **kwargs):
        all_headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        all_headers.update(headers or {})
        if body is not None:
            kwargs["json"] = body
        return self.client.open(API + path, method=method, headers=all_headers, **kwargs)

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.call("PATCH", path, body, **kwargs)


def token_for(user, name="tests"):
    with db.connection_context():
        return ApiToken.issue(user, name)[1]


def _users():
    north, south = Team.create(name="North"), Team.create(name="South")
    return {"sam": User.create_user("sam@example.com", PASSWORD, "Sam Seller", "seller", team=north),
            "sue": User.create_user("sue@example.com", PASSWORD, "Sue Seller", "seller", team=north),
            "max": User.create_user("max@example.com", PASSWORD, "Max Manager", "manager", team=north),
            "sid": User.create_user("sid@example.com", PASSWORD, "Sid Seller", "seller", team=south),
            "ada": User.create_user("ada@example.com", PASSWORD, "Ada Admin", "admin"),
            "lou": User.create_user("lou@example.com", PASSWORD, "Lou Loner", "seller")}


@pytest.fixture
def team(app):
    """Two teams (North: Sam, Sue, manager Max; South: Sid), admin Ada, Lou without a team; each seller
    owns a lead; a token client for everyone."""
    with db.connection_context():
        users = _users()
        leads = {name: make_lead(users[name], name=f"{name.capitalize()} Lead")
                 for name in ("sam", "sue", "sid", "lou")}
    clients = {name: Api(app, token_for(user)) for name, user in users.items()}
    return users, leads, clients


def assert_error(resp, status, *fields):
    assert resp.status_code == status, resp.get_data(as_text=True)[:800]
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert isinstance(body["error"], str) and body["error"] and isinstance(body["fields"], dict)
    for name in fields:
        assert name in body["fields"], body
    return body


# ----- tokens --------------------------------------------------------------------------------------------
def test_token_is_created_on_the_profile_shown_once_and_revoked(app, user, logged_in):
    logged_in.refresh_token("/profile")
    refused = logged_in.form_post("/profile/tokens", {"name": "  "})
    assert refused.status_code == 422 and "Name the token" in refused.get_data(as_text=True)
    made = logged_in.form_post("/profile/tokens", {"name": "Nightly export"})
    assert made.status_code == 201
    page = made.get_data(as_text=True)
    with db.connection_context():
        token = ApiToken.get(ApiToken.name == "Nightly export")
    secret = page.split('id="new-token"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    assert secret.startswith(token.prefix + "_") and len(secret) > 40
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    with db.connection_context():
        stored = db.execute_sql("SELECT * FROM api_token").fetchall()
    assert secret not in json.dumps([list(map(str, row)) for row in stored])  # only the hash is kept
    again = logged_in.get("/profile").get_data(as_text=True)
    assert secret not in again and token.prefix in again and "never" in again

    api = Api(app, secret)
    me = api.get("/me")
    assert me.status_code == 200 and me.get_json()["email"] == user.email
    assert not me.headers.getlist("Set-Cookie")
    with db.connection_context():
        assert ApiToken.get_by_id(token.id).last_used_at is not None

    logged_in.refresh_token("/profile")
    assert logged_in.form_post("/profile/tokens/revoke", {"token": "x"}).status_code == 400
    assert logged_in.form_post("/profile/tokens/revoke", {"token": str(token.id + 999)}).status_code == 404
    revoked = logged_in.form_post("/profile/tokens/revoke", {"token": str(token.id)})
    assert revoked.status_code == 303
    assert_error(api.get("/me"), 401)
    assert "revoked" in logged_in.get("/profile").get_data(as_text=True)
    with db.connection_context():
        kinds = [e.kind for e in SecurityEvent.select().where(SecurityEvent.user == user.id).order_by(SecurityEvent.id)]
    assert kinds.count("api_token_created") == 1 and kinds.count("api_token_revoked") == 1


def test_someone_elses_token_cannot_be_revoked_and_deactivated_users_are_refused(app):
    with db.connection_context():
        users = _users()
    secret = token_for(users["sid"])
    with db.connection_context():
        sid_token = ApiToken.get(ApiToken.user == users["sid"].id)
    sam = HtmxClient(app.test_client())
    sam.login("sam@example.com")
    sam.refresh_token("/profile")
    assert sam.form_post("/profile/tokens/revoke", {"token": str(sid_token.id)}).status_code == 404
    api = Api(app, secret)
    assert api.get("/leads").status_code == 200
    with db.connection_context():
        User.get_by_id(users["sid"].id).administer(users["ada"], active=False)
    body = assert_error(api.get("/leads"), 401)
    assert "deactivated" in body["error"]
    with db.connection_context():
        User.get_by_id(users["sid"].id).administer(users["ada"], active=True)
    assert api.get("/leads").status_code == 200  # the token itself was not revoked


def test_authentication_is_per_request_with_a_bearer_token(app, user, logged_in):
    anonymous = Api(app, None)
    resp = anonymous.get("/leads")
    assert_error(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Basic abc", "Bearer", "Bearer pcrm_00000000_nope", "Token x", "Bearer " + "x" * 500):
        assert_error(anonymous.get("/leads", headers={"Authorization": header}), 401)
    assert logged_in.get(API + "/leads").status_code == 401  # a session cookie means nothing to the API
    assert logged_in.post(API + "/leads", json={"name": "x"}).status_code == 401
    api = Api(app, token_for(user))
    assert api.post("/leads", {"name": "No CSRF token needed"}).status_code == 201
    assert Api(app, None).client.get(API + "/openapi.json").status_code == 200  # the description is public


# ----- reach ----------------------------------------------------------------------------------------------
def test_api_user_has_the_reach_of_the_web_ui(team):
    users, leads, clients = team
    visible = {"sam": {"Sam", "Sue"}, "sue": {"Sam", "Sue"}, "max": {"Sam", "Sue"}, "sid": {"Sid"},
               "ada": {"Sam", "Sue", "Sid", "Lou"}, "lou": {"Lou"}}
    for actor, names in visible.items():
        items = clients[actor].get("/leads").get_json()["items"]
        assert {i["name"].split()[0] for i in items} == names, actor
        for owner, lead in leads.items():
            status = clients[actor].get(f"/leads/{lead.id}").status_code
            assert status == (200 if owner.capitalize() in names else 404), (actor, owner)
    sue_lead = leads["sue"].id
    assert_error(clients["sam"].patch(f"/leads/{sue_lead}", {"topic": "Mine now"}), 403)  # teammate: read-only
    assert_error(clients["sid"].patch(f"/leads/{sue_lead}", {"topic": "x"}), 404)  # another team: as if missing
    assert_error(clients["sid"].post(f"/leads/{sue_lead}/qualify", {}), 404)
    assert_error(clients["lou"].get(f"/leads/{sue_lead}"), 404)
    assert clients["max"].patch(f"/leads/{sue_lead}", {"topic": "Managed"}).status_code == 200
    assert clients["ada"].patch(f"/leads/{sue_lead}", {"rating": "hot"}).status_code == 200
    body = assert_error(clients["sam"].patch(f"/leads/{leads['sam'].id}", {"owner": users["sue"].id}), 403, "owner")
    assert "manager" in body["error"]
    assert clients["max"].patch(f"/leads/{leads['sam'].id}", {"owner": users["sue"].id}).get_json()["owner"] == \
        users["sue"].id
    assert_error(clients["max"].patch(f"/leads/{leads['sue'].id}", {"owner": users["sid"].id}), 403, "owner")
    mine = clients["sue"].get("/leads?owner=me").get_json()["items"]
    assert sorted(i["name"] for i in mine) == ["Sam Lead", "Sue Lead"]  # Sam's was just reassigned to Sue
    # a linked record out of reach is unknown, as it is in the web UI's choices
    with db.connection_context():
        sid_account = Account.create_account(users["sid"], name="South Secret GmbH")
    assert_error(clients["sam"].post("/contacts", {"name": "Carl", "account": sid_account.id}), 422, "account")
    assert clients["sid"].post("/contacts", {"name": "Carl", "account": sid_account.id}).status_code == 201
    assert clients["sam"].get(f"/accounts/{sid_account.id}").status_code == 404
    assert clients["ada"].get(f"/accounts/{sid_account.id}").status_code == 200


# ----- versions -----------------------------------------------------------------------------------------
def test_etag_and_if_match(team):
    users, leads, clients = team
    api, lead_id = clients["sam"], leads["sam"].id
    got = api.get(f"/leads/{lead_id}")
    assert got.headers["ETag"] == '"1"' and got.get_json()["version"] == 1
    fresh = api.patch(f"/leads/{lead_id}", {"topic": "Fleet"}, headers={"If-Match": '"1"'})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"2"' and fresh.get_json()["version"] == 2
    stale = api.patch(f"/leads/{lead_id}", {"topic": "Lost update"}, headers={"If-Match": '"1"'})
    body = assert_error(stale, 409)
    assert stale.headers["ETag"] == '"2"' and body["current_version"] == 2 and body["record"]["topic"] == "Fleet"
    assert "Sam Seller" in body["error"]
    assert_error(api.patch(f"/leads/{lead_id}", {"topic": "Lost update", "version": 1}), 409)
    assert api.patch(f"/leads/{lead_id}", {"topic": "Body version", "version": 2}).get_json()["version"] == 3
    assert api.patch(f"/leads/{lead_id}", {"topic": "Weak", }, headers={"If-Match": 'W/"3"'}).status_code == 200
    assert api.patch(f"/leads/{lead_id}", {"topic": "Any"}, headers={"If-Match": "*"}).status_code == 200
    last = api.patch(f"/leads/{lead_id}", {"topic": "No precondition: last writer wins"})
    assert last.status_code == 200 and last.get_json()["version"] == 6
    same = api.patch(f"/leads/{lead_id}", {"topic": "No precondition: last writer wins"})
    assert same.get_json()["version"] == 6  # no real change: no new version, no event
    assert_error(api.patch(f"/leads/{lead_id}", {"topic": "x"}, headers={"If-Match": "six"}), 400)
    assert_error(api.patch(f"/leads/{lead_id}", {}, headers={"If-Match": '"5"'}), 409)
    assert_error(api.post(f"/leads/{lead_id}/disqualify", {"reason": "lost"}, headers={"If-Match": '"5"'}), 409)
    with db.connection_context():
        lead = Lead.get_by_id(lead_id)
        assert lead.status == "open" and lead.topic == "No precondition: last writer wins"
        assert HistoryEvent.select().where((HistoryEvent.record_type == "lead") & (HistoryEvent.record_id == lead_id)
                                           & (HistoryEvent.action == "update")).count() == 5
    done = api.post(f"/leads/{lead_id}/disqualify", {"reason": "lost"}, headers={"If-Match": '"6"'})
    assert done.status_code == 200 and done.get_json()["status"] == "disqualified" and done.headers["ETag"] == '"7"'


# ----- errors -------------------------------------------------------------------------------------------
def test_every_error_status_is_json(team, app):
    users, leads, clients = team
    api, lead_id = clients["sam"], leads["sam"].id
    assert_error(Api(app, None).get("/leads"), 401)
    assert_error(api.call("POST", "/leads", data="{not json", content_type="application/json"), 400)
    assert_error(api.call("POST", "/leads", data="[1, 2]", content_type="application/json"), 400)
    assert_error(api.call("POST", "/leads", data='{"name": NaN}', content_type="application/json"), 400)
    assert_error(api.call("POST", "/leads", data=b'{"name": "\xff"}', content_type="application/json"), 400)
    assert_error(api.call("POST", "/leads", data="name=x", content_type="application/x-www-form-urlencoded"), 415)
    assert_error(api.call("PATCH", f"/leads/{lead_id}", data="topic", content_type="text/plain"), 415)
    assert_error(api.call("POST", "/leads", data=b"{" + b" " * (5 * 1024 * 1024) + b"}",
                          content_type="application/json"), 413)
    assert_error(api.get("/leads/999999"), 404)
    assert_error(api.get("/nothing/here"), 404)
    assert_error(api.get("/leads/abc"), 404)
    resp = api.call("DELETE", f"/leads/{lead_id}")
    assert_error(resp, 405)
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "PATCH"}
    assert_error(api.post("/leads", {"company": "No name"}), 422, "name")
    assert_error(api.post("/leads", {"name": "A", "email": "not-an-email"}), 422, "email")
    assert_error(api.post("/leads", {"name": "A", "budget_amount": "lots"}), 422, "budget_amount")
    body = assert_error(api.post("/leads", {"name": "A", "colour": "red", "status": "qualified", "rating": 5}), 422,
                        "colour", "status", "rating")
    assert body["fields"]["status"] == "This field is read-only." and body["fields"]["colour"] == "Unknown field."
    assert_error(api.post("/leads", {"name": "A\x00"}), 422, "name")
    assert_error(api.post("/leads", {"name": None}), 422, "name")
    assert_error(api.get("/leads?limit=0"), 422, "limit")
    assert_error(api.get("/leads?status=maybe&owner=someone"), 422, "status", "owner")
    assert_error(api.get("/leads?page=2&offset=3"), 422, "page")
    with db.connection_context():
        counts = world_counts()
    rule = assert_error(api.post(f"/leads/{lead_id}/qualify", {"budget_amount": None}), 422, "budget_amount")
    assert rule["step"] == "develop"
    with db.connection_context():
        assert world_counts() == counts  # a refused step writes nothing
    assert api.post(f"/leads/{lead_id}/disqualify", {"reason": "lost"}).status_code == 200
    assert_error(api.post(f"/leads/{lead_id}/qualify", {}), 409)  # the state does not allow it
    assert_error(clients["sam"].patch(f"/leads/{leads['sue'].id}", {"topic": "x"}), 403)


def test_money_is_decimal_strings_and_dates_iso(team):
    users, leads, clients = team
    api = clients["sam"]
    made = api.post("/leads", {"name": "Numbers", "budget_amount": 1234.5})  # a JSON number is read as a Decimal
    assert made.status_code == 201 and made.get_json()["budget_amount"] == "1234.50"
    exact = api.patch(f"/leads/{made.get_json()['id']}", {"budget_amount": "0.30"}).get_json()
    assert exact["budget_amount"] == "0.30"
    product = api.post("/products", {"sku": "SKU-1", "name": "Widget", "unit": "piece", "list_price": "19.99",
                                     "tax_rate": "7"}).get_json()
    assert product["list_price"] == "19.99" and product["tax_rate"] == "7.00"
    assert_error(api.post("/products", {"sku": "SKU-1", "name": "Again", "unit": "piece", "list_price": "1",
                                        "tax_rate": "7"}), 422, "sku")
    assert product["created_at"].endswith("Z") and "T" in product["created_at"]


# ----- the sales process through the API ------------------------------------------------------------------
def test_lead_to_paid_invoice_through_moves_and_document_actions(team):
    users, leads, clients = team
    api = clients["sam"]
    lead = api.post("/leads", {"name": "Lena Lead", "company": "Acme Flow GmbH", "topic": "Fleet software"}).get_json()
    assert lead["column"] == "qualify"
    missing = assert_error(api.post(f"/leads/{lead['id']}/qualify", {}), 422, "email", "budget_amount",
                           "purchase_timeframe")
    assert missing["step"] == "develop"
    deal = api.post(f"/leads/{lead['id']}/qualify", {"email": "lena@acmeflow.example", "budget_amount": "12000",
                                                     "purchase_timeframe": "this quarter"})
    assert deal.status_code == 200
    deal = deal.get_json()
    assert deal["column"] == "develop" and deal["lead"] == lead["id"] and deal["probability"] == 20
    assert api.get(f"/leads/{lead['id']}").get_json()["status"] == "qualified"
    deal_id = deal["id"]

    rule = assert_error(api.post(f"/opportunities/{deal_id}/move", {"to": "propose"}), 422, "line")
    assert rule["step"] == "propose"
    skip = assert_error(api.post(f"/opportunities/{deal_id}/move", {"to": "close"}), 422, "line")
    assert "Cannot skip" in skip["error"]
    with_line = api.post(f"/opportunities/{deal_id}/lines", {**LINE}, headers={"If-Match": f'"{deal["version"]}"'})
    assert with_line.status_code == 200
    deal = with_line.get_json()
    assert deal["lines"][0]["net"] == "1800.00" and deal["version"] == 2
    proposed = api.post(f"/opportunities/{deal_id}/move", {"to": "propose", "version": deal["version"]})
    assert proposed.status_code == 200 and proposed.get_json()["column"] == "propose"
    again = api.post(f"/opportunities/{deal_id}/move", {"to": "propose"})  # idempotent
    assert again.get_json()["version"] == proposed.get_json()["version"]

    quotes = api.get(f"/quotes?opportunity={deal_id}").get_json()["items"]
    assert [q["status"] for q in quotes] == ["draft"]
    quote = quotes[0]
    activated = api.post(f"/quotes/{quote['id']}/activate", {}, headers={"If-Match": f'"{quote["version"]}"'})
    assert activated.status_code == 200
    quote = activated.get_json()
    assert quote["status"] == "active" and len(quote["pdf_sha256"]) == 64 and quote["lines"][0]["net"] == "1800.00"
    closing = api.post(f"/opportunities/{deal_id}/move", {"to": "close"}).get_json()
    assert closing["column"] == "close" and closing["probability"] == 80

    win = assert_error(api.post(f"/opportunities/{deal_id}/move", {"to": "fulfill"}), 422, "actual_revenue",
                       "actual_close_date")
    assert win["defaults"] == {"actual_revenue": "1800.00", "actual_close_date": today().isoformat()}
    won = api.post(f"/opportunities/{deal_id}/move", {"to": "fulfill", **win["defaults"]}).get_json()
    assert won["status"] == "won" and won["column"] == "fulfill" and won["actual_revenue"] == "1800.00"
    assert api.get(f"/quotes/{quote['id']}").get_json()["status"] == "won"

    order = api.get(f"/orders?opportunity={deal_id}").get_json()["items"][0]
    assert order["status"] == "open" and order["gross_total"] == "2142.00"
    fulfilled = api.post(f"/orders/{order['id']}/fulfil", {})
    assert fulfilled.status_code == 200 and fulfilled.get_json()["status"] == "fulfilled"
    drafted = api.post(f"/orders/{order['id']}/invoice")
    assert drafted.status_code == 201 and drafted.headers["Location"].startswith(API + "/invoices/")
    invoice = drafted.get_json()
    assert invoice["status"] == "draft" and invoice["number"] is None
    missing = assert_error(api.post(f"/invoices/{invoice['id']}/issue", {}), 422)
    assert missing["fields"]  # the company's and customer's postal data an e-invoice needs
    with db.connection_context():
        from builders import add_postal_data
        add_postal_data(Opportunity.get_by_id(deal_id))
    issued = api.post(f"/invoices/{invoice['id']}/issue", {}, headers={"If-Match": f'"{invoice["version"]}"'})
    assert issued.status_code == 200, issued.get_json()
    invoice = issued.get_json()
    assert invoice["status"] == "issued" and invoice["number"].startswith("INV-")
    assert invoice["payment_state"] == "unpaid"
    assert api.get(f"/opportunities/{deal_id}").get_json()["column"] == "invoiced"
    assert_error(api.post(f"/invoices/{invoice['id']}/paid", {"paid_on": "1999-01-01"}), 422, "paid_on")
    paid = api.post(f"/invoices/{invoice['id']}/paid", {"paid_on": today().isoformat()}).get_json()
    assert paid["status"] == "paid" and paid["paid_on"] == today().isoformat()
    assert_error(api.post(f"/invoices/{invoice['id']}/cancel", {"reason": "Too late"}), 409)
    with db.connection_context():
        moves = [(e.action, e.from_stage, e.to_stage) for e in HistoryEvent.select().where(
            (HistoryEvent.record_type == "opportunity") & (HistoryEvent.record_id == deal_id)).order_by(HistoryEvent.id)
            if e.to_stage]
    assert moves == [("move", "develop", "propose"), ("move", "propose", "close"), ("won", "close", "fulfill"),
                     ("move", "fulfill", "invoiced")]


def test_an_invoice_canceled_after_issue_names_its_credit_note(team):
    users, _, clients = team
    api = clients["sam"]
    with db.connection_context():
        invoice_id = make_draft_invoice(users["sam"], company="Credit Corp").id
    assert api.get(f"/invoices/{invoice_id}").get_json()["credit_note_number"] is None
    assert api.post(f"/invoices/{invoice_id}/issue", {}).status_code == 200
    canceled = api.post(f"/invoices/{invoice_id}/cancel", {"reason": "Returned goods"})
    assert canceled.status_code == 200, canceled.get_json()
    body = canceled.get_json()
    assert body["status"] == "canceled" and body["credit_note_number"] == f"CN-{today().year}-00001"
    listed = api.get("/invoices?status=canceled").get_json()["items"]
    assert [i["credit_note_number"] for i in listed] == [body["credit_note_number"]]


CII_NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
          "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


def test_documents_download_as_files_within_the_records_reach(team):
    """A script fetches what a seller downloads: the quote's and the invoice's PDF (once sent or issued, the
    frozen bytes with their SHA-256 as ETag), the issued invoice's Factur-X XML alone for a portal, and the
    credit note's PDF and XML after a cancel. A draft has no XML yet (409), an invoice never credited no
    credit note (404), and another team gets 404 for every file."""
    from facturx import get_xml_from_pdf
    from lxml import etree
    from builders import make_proposed
    from models import CreditNote
    users, _, clients = team
    sam, sid = clients["sam"], clients["sid"]
    with db.connection_context():
        quote_id = Quote.get(Quote.opportunity == make_proposed(users["sam"]).id).id
        invoice_id = make_draft_invoice(users["sam"], company="Files Corp").id
    files = [f"/quotes/{quote_id}/pdf"] + [f"/invoices/{invoice_id}/{path}"
                                           for path in ("pdf", "xml", "credit-note/pdf", "credit-note/xml")]

    draft = sam.get(f"/quotes/{quote_id}/pdf")
    assert draft.status_code == 200 and draft.mimetype == "application/pdf" and draft.data.startswith(b"%PDF-")
    assert draft.headers["Cache-Control"] == "private, no-store" and "ETag" not in draft.headers
    assert sam.post(f"/quotes/{quote_id}/activate", {}).status_code == 200
    sent = sam.get(f"/quotes/{quote_id}/pdf")
    with db.connection_context():
        quote = Quote.get_by_id(quote_id)
    assert sent.data == bytes(quote.pdf) and hashlib.sha256(sent.data).hexdigest() == quote.pdf_sha256
    assert sent.headers["ETag"] == f'"{quote.pdf_sha256}"'
    assert sent.headers["Content-Disposition"] == f'attachment; filename="{quote.file_name}"'
    assert sam.get(f"/quotes/{quote_id}/pdf", headers={"If-None-Match": sent.headers["ETag"]}).status_code == 304

    assert "issued" in assert_error(sam.get(f"/invoices/{invoice_id}/xml"), 409)["error"]
    assert "credit note" in assert_error(sam.get(f"/invoices/{invoice_id}/credit-note/pdf"), 404)["error"]
    issued = sam.post(f"/invoices/{invoice_id}/issue", {}).get_json()
    pdf, xml = sam.get(f"/invoices/{invoice_id}/pdf"), sam.get(f"/invoices/{invoice_id}/xml")
    assert hashlib.sha256(pdf.data).hexdigest() == issued["pdf_sha256"] == xml.headers["ETag"].strip('"')
    assert xml.status_code == 200 and xml.mimetype == "application/xml"
    assert xml.headers["Content-Disposition"] == f'attachment; filename="{issued["number"]}-factur-x.xml"'
    assert xml.data == get_xml_from_pdf(pdf.data, check_xsd=False)[1]
    root = etree.fromstring(xml.data)
    assert root.findtext(".//rsm:ExchangedDocument/ram:ID", namespaces=CII_NS) == issued["number"]
    assert root.findtext(".//ram:GrandTotalAmount", namespaces=CII_NS) == issued["gross_total"]

    assert sam.post(f"/invoices/{invoice_id}/cancel", {"reason": "Ordered twice"}).status_code == 200
    credit_pdf = sam.get(f"/invoices/{invoice_id}/credit-note/pdf")
    credit_xml = sam.get(f"/invoices/{invoice_id}/credit-note/xml")
    with db.connection_context():
        credit = CreditNote.get(CreditNote.invoice == invoice_id)
    assert credit_pdf.data == bytes(credit.pdf) and credit_pdf.headers["ETag"] == f'"{credit.pdf_sha256}"'
    assert credit_xml.data == get_xml_from_pdf(credit_pdf.data, check_xsd=False)[1]
    root = etree.fromstring(credit_xml.data)
    assert root.findtext(".//rsm:ExchangedDocument/ram:TypeCode", namespaces=CII_NS) == "381"
    assert root.findtext(".//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", namespaces=CII_NS) == \
        issued["number"]
    assert sam.get(f"/invoices/{invoice_id}/pdf").data == pdf.data  # the voided invoice itself is unchanged

    for path in files:
        assert_error(sid.get(path), 404)
    assert all(clients["max"].get(path).status_code == 200 for path in files)  # Sam's manager


def test_json_numbers_follow_the_typed_number_rules(team):
    """A JSON number the field cannot keep (a price of 0.0725) is refused at the field as typed text is,
    not rounded to 0.07; JSON numbers have no thousands separators, so 1.250 is one and a quarter."""
    from builders import make_proposed
    users, _, clients = team
    api = clients["sam"]
    with db.connection_context():
        quote_id = Quote.get(Quote.opportunity == make_proposed(users["sam"]).id).id
    line = {"description": "Screws", "quantity": 12500, "tax_rate": 19}
    body = assert_error(api.post(f"/quotes/{quote_id}/lines", {**line, "unit_price": 0.0725}), 422, "unit_price")
    assert "at most 2 decimal places" in body["fields"]["unit_price"]
    added = api.post(f"/quotes/{quote_id}/lines", {**line, "unit_price": 1.250, "quantity": 2.125})
    assert added.status_code == 200, added.get_json()
    assert (added.get_json()["lines"][-1]["unit_price"], added.get_json()["lines"][-1]["quantity"]) == ("1.25", "2.125")


def test_vat_exemptions_of_products_and_lines(team):
    from builders import make_proposed
    users, _, clients = team
    api = clients["sam"]
    refused = assert_error(api.post("/products", {"sku": "EX-1", "name": "Exam fee", "list_price": "250",
                                                  "tax_rate": "19", "tax_exemption": "§ 4 Nr. 21 UStG"}),
                           422, "tax_exemption")
    assert "Only an item without VAT can be exempt" in refused["fields"]["tax_exemption"]
    exam = api.post("/products", {"sku": "EX-1", "name": "Exam fee", "list_price": "250", "tax_rate": "0",
                                  "tax_exemption": "§ 4 Nr. 21 UStG"})
    assert exam.status_code == 201 and exam.get_json()["tax_exemption"] == "§ 4 Nr. 21 UStG"
    with db.connection_context():
        quote_id = Quote.get(Quote.opportunity == make_proposed(users["sam"]).id).id
    line = api.post(f"/quotes/{quote_id}/lines", {"product": exam.get_json()["id"]}).get_json()["lines"][-1]
    assert (line["tax_rate"], line["tax_exemption"]) == ("0.00", "§ 4 Nr. 21 UStG")
    assert_error(api.post(f"/quotes/{quote_id}/lines", {"description": "Fee", "unit_price": "5", "tax_rate": "7",
                                                        "tax_exemption": "§ 4 Nr. 14 UStG"}), 422, "tax_exemption")
    raised = api.patch(f"/quotes/{quote_id}/lines/{line['id']}", {"tax_rate": "19"})
    assert raised.status_code == 200 and raised.get_json()["lines"][-1]["tax_exemption"] == ""
    assert line["supply"] == "services" and exam.get_json()["supply"] == "services"
    goods = api.post(f"/quotes/{quote_id}/lines", {"description": "Scanner", "unit_price": "99", "supply": "goods"})
    assert goods.get_json()["lines"][-1]["supply"] == "goods"
    assert_error(api.post(f"/quotes/{quote_id}/lines", {"description": "Scanner", "unit_price": "99",
                                                        "supply": "software"}), 422, "supply")


def test_the_invoice_list_reads_credit_notes_in_one_query(team):
    from clients import queries_of
    users, _, clients = team

    def credited(*companies):
        with db.connection_context():
            for company in companies:
                invoice = make_draft_invoice(users["sam"], company=company)
                invoice.issue(users["sam"])
                Invoice.get_by_id(invoice.id).cancel(users["sam"], reason="Returned")

    credited("Credit Corp")
    clients["sam"].get("/me")  # the token's first use of the run is written down once
    few, answer = queries_of(lambda: clients["sam"].get("/invoices"))
    credited("Return Ltd", "Refund SA")
    many, more = queries_of(lambda: clients["sam"].get("/invoices"))
    numbers = [item["credit_note_number"] for item in more.get_json()["items"]]
    assert answer.status_code == more.status_code == 200 and many == few
    assert numbers == [f"CN-{today().year}-{n:05d}" for n in (1, 2, 3)]


def test_draft_documents_are_edited_fields_and_lines_until_they_are_sent(team):
    """A draft quote's and a draft invoice's validity, terms, notes and lines change through the API as in
    the panels (If-Match honoured, one history event each); once sent or issued, nothing changes."""
    from builders import make_draft_invoice, make_proposed
    users, _, clients = team
    api = clients["sam"]
    with db.connection_context():
        quote_id = Quote.get(Quote.opportunity == make_proposed(users["sam"]).id).id
        invoice_id = make_draft_invoice(users["sam"], company="Draft Corp").id
    quote = api.get(f"/quotes/{quote_id}").get_json()
    valid = (today() + datetime.timedelta(days=45)).isoformat()
    changed = api.patch(f"/quotes/{quote_id}", {"valid_until": valid, "notes": "Delivery in two weeks.\nThanks!"},
                        headers={"If-Match": f'"{quote["version"]}"'})
    assert changed.status_code == 200, changed.get_json()
    quote = changed.get_json()
    assert quote["valid_until"] == valid and quote["notes"] == "Delivery in two weeks.\nThanks!"
    assert_error(api.patch(f"/quotes/{quote_id}", {"notes": "x"}, headers={"If-Match": '"1"'}), 409)
    assert_error(api.patch(f"/quotes/{quote_id}", {"notes": "bell\x07"}), 422, "notes")
    assert_error(api.patch(f"/quotes/{quote_id}", {"number": 7}), 422, "number")  # read-only

    added = api.post(f"/quotes/{quote_id}/lines", {"description": "Training day", "quantity": "1",
                                                   "unit_price": "800.00", "tax_rate": "19"})
    assert added.status_code == 200
    quote = added.get_json()
    line = quote["lines"][-1]
    assert line["description"] == "Training day" and quote["net_total"] == "2600.00"
    edited = api.patch(f"/quotes/{quote_id}/lines/{line['id']}", {"quantity": "2"},
                       headers={"If-Match": f'"{quote["version"]}"'})
    assert edited.status_code == 200 and edited.get_json()["net_total"] == "3400.00"
    assert_error(api.patch(f"/quotes/{quote_id}/lines/{line['id']}", {"quantity": "-1"}), 422, "quantity")
    assert_error(api.call("DELETE", f"/quotes/{quote_id}/lines/{line['id']}", headers={"If-Match": '"1"'}), 409)
    removed = api.call("DELETE", f"/quotes/{quote_id}/lines/{line['id']}")
    assert removed.status_code == 200 and [l["description"] for l in removed.get_json()["lines"]] == ["Consulting day"]
    assert_error(api.call("DELETE", f"/quotes/{quote_id}/lines/{line['id']}"), 404)
    with db.connection_context():
        first_invoice_line = Invoice.get_by_id(invoice_id).line_rows()[0].id
        other_quote_line = Quote.get(Quote.opportunity == make_proposed(users["sam"]).id).line_rows()[0].id
    assert_error(api.patch(f"/quotes/{quote_id}/lines/{other_quote_line}", {"quantity": "3"}), 404)  # not its line
    with db.connection_context():
        actions = [e.action for e in HistoryEvent.select().where(
            (HistoryEvent.record_type == "quote") & (HistoryEvent.record_id == quote_id)).order_by(HistoryEvent.id)]
    assert actions[-4:] == ["update", "add_line", "update_line", "remove_line"]

    assert api.post(f"/quotes/{quote_id}/activate", {}).status_code == 200
    assert_error(api.patch(f"/quotes/{quote_id}", {"notes": "too late"}), 409)
    assert_error(api.post(f"/quotes/{quote_id}/lines", {"description": "More", "unit_price": "1.00"}), 409)
    sent = api.get(f"/quotes/{quote_id}").get_json()
    assert_error(api.call("DELETE", f"/quotes/{quote_id}/lines/{sent['lines'][0]['id']}"), 409)

    invoice = api.patch(f"/invoices/{invoice_id}", {"payment_terms_days": 14, "payment_terms": "14 days net.",
                                                    "notes": "PO 4711"})
    assert invoice.status_code == 200, invoice.get_json()
    assert invoice.get_json()["payment_terms_days"] == 14 and invoice.get_json()["notes"] == "PO 4711"
    assert_error(api.patch(f"/invoices/{invoice_id}", {"payment_terms_days": 4000}), 422, "payment_terms_days")
    line = api.patch(f"/invoices/{invoice_id}/lines/{first_invoice_line}", {"discount_pct": "0"})
    assert line.status_code == 200 and line.get_json()["net_total"] == "2000.00"
    assert_error(clients["sid"].patch(f"/invoices/{invoice_id}", {"notes": "not mine"}), 404)
    assert_error(clients["sue"].patch(f"/invoices/{invoice_id}", {"notes": "a teammate's"}), 403)


def test_fulfil_and_invoice_in_one_move_lost_and_reopen(team):
    users, leads, clients = team
    api = clients["sam"]
    with db.connection_context():
        deal = make_closing(users["sam"], company="Move Corp")
        from builders import add_postal_data, win_inputs
        add_postal_data(deal)
        inputs = win_inputs(deal)
        other = make_opportunity(users["sam"], company="Lost Corp")
    moved = api.post(f"/opportunities/{deal.id}/move", {"to": "invoiced", **inputs})
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["column"] == "invoiced" and moved.get_json()["status"] == "won"
    invoices = api.get(f"/invoices?opportunity={deal.id}&status=issued").get_json()
    assert invoices["total"] == 1 and invoices["items"][0]["number"].startswith("INV-")
    lost = assert_error(api.post(f"/opportunities/{other.id}/move", {"to": "lost"}), 422, "close_reason")
    assert {c["value"] for c in lost["choices"]["close_reason"]} >= {"price", "competitor"}
    closed = api.post(f"/opportunities/{other.id}/move", {"to": "lost", "close_reason": "price", "competitor": "Rival"})
    assert closed.get_json()["status"] == "lost" and closed.get_json()["competitor"] == "Rival"
    assert_error(api.post(f"/opportunities/{other.id}/move", {"to": "propose"}), 409)
    reopened = api.post(f"/opportunities/{other.id}/move", {"to": "develop"}).get_json()
    assert reopened["status"] == "open" and reopened["column"] == "develop"
    assert_error(api.post(f"/opportunities/{other.id}/move", {"to": "sideways"}), 422)
    assert_error(api.post(f"/opportunities/{other.id}/move", {}), 422, "to")


def test_create_and_update_every_resource(team):
    users, leads, clients = team
    api = clients["sue"]
    account = api.post("/accounts", {"name": "Nordwind AG", "country": "de", "city": "Kiel"})
    assert account.status_code == 201 and account.headers["ETag"] == '"1"'
    account = account.get_json()
    assert account["country"] == "DE" and account["owner"] == users["sue"].id
    assert_error(api.post("/accounts", {"name": "X", "owner": users["sam"].id}), 422, "owner")  # creator owns it
    contact = api.post("/contacts", {"name": "Nina Nord", "account": account["id"], "email": "nina@nordwind.example"})
    assert contact.status_code == 201 and contact.get_json()["account"] == account["id"]
    changed = api.patch(f"/contacts/{contact.get_json()['id']}", {"job_title": "CTO", "account": None})
    assert changed.get_json()["job_title"] == "CTO" and changed.get_json()["account"] is None
    assert_error(api.patch(f"/accounts/{account['id']}", {"country": "Germany"}), 422, "country")
    product = api.post("/products", {"sku": "NW-1", "name": "Sail", "unit": "set", "list_price": "99.00",
                                     "tax_rate": "19.00"}).get_json()
    off = api.patch(f"/products/{product['id']}", {"active": False}).get_json()
    assert off["active"] is False and off["version"] == 2
    assert [p["sku"] for p in api.get("/products?active=false").get_json()["items"]] == ["NW-1"]
    assert_error(api.post("/products", {"sku": "NW-2", "unit": "bucket"}), 422, "name", "unit")

    with db.connection_context():
        counts = world_counts()
    refused = assert_error(api.post("/opportunities", {"name": "Half a lead", "company": "Some Co"}), 422,
                           "budget_amount", "purchase_timeframe")
    assert refused["step"] == "develop"
    with db.connection_context():
        assert world_counts() == counts  # neither the lead nor anything else was kept
    data = {k: v for k, v in lead_data().items() if k != "notes"}
    deal = api.post("/opportunities", data)
    assert deal.status_code == 201, deal.get_json()
    deal = deal.get_json()
    assert deal["owner"] == users["sue"].id and deal["column"] == "develop" and deal["estimated_revenue"] == "12500.00"
    assert api.get(f"/leads/{deal['lead']}").get_json()["status"] == "qualified"
    edited = api.patch(f"/opportunities/{deal['id']}", {"probability": 35, "estimated_close_date": "2031-03-31",
                                                         "estimated_revenue": "15000"})
    assert edited.status_code == 200
    assert (edited.get_json()["probability"], edited.get_json()["estimated_close_date"]) == (35, "2031-03-31")
    assert_error(api.patch(f"/opportunities/{deal['id']}", {"probability": 101}), 422, "probability")
    assert_error(api.patch(f"/opportunities/{deal['id']}", {"probability": "high"}), 422, "probability")
    assert_error(api.patch(f"/opportunities/{deal['id']}", {"stage": "close"}), 422, "stage")  # only by a move


def test_lists_page_and_filter(team):
    users, leads, clients = team
    api = clients["ada"]
    with db.connection_context():
        for n in range(6):
            make_lead(users["ada"], name=f"Paged {n}", company="Paging Co")
    first = api.get("/leads?q=paged&limit=4").get_json()
    assert first["total"] == 6 and len(first["items"]) == 4 and first["offset"] == 0
    second = api.client.get(first["next"], headers={"Authorization": f"Bearer {api.token}"}).get_json()
    assert [i["name"] for i in second["items"]] == ["Paged 4", "Paged 5"] and second["next"] is None
    by_page = api.get("/leads?q=paged&limit=4&page=2").get_json()
    assert by_page["items"] == second["items"] and by_page["offset"] == 4
    assert api.get("/leads?q=PAGED&status=qualified").get_json()["total"] == 0
    assert api.get(f"/leads?owner={users['sam'].id}").get_json()["total"] == 1
    assert "lines" not in first["items"][0]


def test_openapi_document_describes_every_route(app):
    resp = Api(app, None).client.get(API + "/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"] == "3.1.0" and doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR
    assert not [error.message for error in OPENAPI_31_VALIDATOR.iter_errors(doc)][:5]
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item
                  if method in ("get", "post", "patch", "delete")}
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint not in ("api.openapi", "api.unknown"):
            path = rule.rule.replace("<int:", "{").replace(">", "}")
            routes |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes == documented
    text = json.dumps(doc)
    for name in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert name in doc["components"]["schemas"], name
    for path, item in doc["paths"].items():
        for method in ("post", "patch"):
            if method in item:
                assert {"401", "404", "409", "415", "422"} <= set(item[method]["responses"]) or path.endswith(
                    ("/leads", "/accounts", "/contacts", "/products", "/opportunities")), (method, path)


# ----- schemathesis --------------------------------------------------------------------------------------
def test_schemathesis_against_own_openapi_document(app, request):
    """Generated requests for every operation (valid ones, then invalid ones) with a real token and real
    record ids: never a 5xx; every answer's status, content type, headers and body conform to the document."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                                   response_schema_conformance, status_code_conformance)

    with db.connection_context():
        users = _users()
        sam = users["sam"]
        invoice = make_draft_invoice(sam, company="Fuzz Corp")
        ids = {"lead_id": make_lead(sam).id, "opportunity_id": make_opportunity(sam, [LINE]).id,
               "quote_id": Quote.get(Quote.opportunity == invoice.opportunity_id).id, "order_id": invoice.order_id,
               "invoice_id": invoice.id, "account_id": Account.select().first().id,
               "contact_id": Contact.select().first().id,
               "product_id": Product.create_product(sam, sku="F-1", name="Fuzz", list_price="5", unit="piece").id}
        line_ids = {arg: model.get_by_id(ids[arg]).line_rows()[0].id
                    for arg, model in (("opportunity_id", Opportunity), ("quote_id", Quote), ("invoice_id", Invoice))}
    token = token_for(sam)
    schema = schemathesis.openapi.from_wsgi(API + "/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance]
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    started, failures, calls = time.monotonic(), [], [0]
    for mode, examples in ((schemathesis.GenerationMode.POSITIVE, 6), (schemathesis.GenerationMode.NEGATIVE, 3)):
        for operation in operations:
            names = {p.name for p in operation.path_parameters}
            path_ids = {k: ids[k] for k in names if k != "line_id"}
            if "line_id" in names:  # a line of the document the path names
                document = next(iter(path_ids))
                path_ids["line_id"] = line_ids[document]
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_ids)

            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def check(case):
                calls[0] += 1
                case.call_and_validate(headers=headers, checks=checks)

            try:
                check()
            except Exception as exc:  # collect every operation's failure, not just the first
                failures.append(f"{mode.value} {operation.label}: {str(exc)[:1500]}")
    elapsed = time.monotonic() - started
    print(f"schemathesis: {len(operations)} operations, {calls[0]} requests, {elapsed:.1f} s")
    assert not failures, "\n\n".join(failures[:5])
    assert calls[0] >= len(operations) * 4
    assert elapsed < 60


def test_ids_beyond_what_the_database_holds_are_404_and_line_routes_name_their_methods(team, app):
    users, leads, clients = team
    api = clients["sam"]
    for method, path in (("GET", "/quotes/100000000000000000000"), ("PATCH", "/leads/2147483648"),
                         ("PATCH", "/quotes/1/lines/100000000000000000000"),
                         ("DELETE", "/invoices/1/lines/99999999999999999999")):
        assert_error(api.call(method, path, {} if method != "GET" else None), 404)
    wrong = api.call("PUT", "/quotes/1/lines/1", {})
    assert_error(wrong, 405)
    assert wrong.headers["Allow"] == "PATCH, DELETE"
    from clients import HtmxClient
    web = HtmxClient(app.test_client())
    web.login("sam@example.com")
    assert web.get("/leads/100000000000000000000").status_code == 404
