"""HTTP tests for accounts, contacts, products, settings and the global search."""
import re
import struct
import zlib
from decimal import Decimal

import pytest

from models import Account, Contact, HistoryEvent, Invoice, Product, Quote, Settings, Team, User, db

from builders import make_draft_invoice, make_lead, make_opportunity, make_proposed


def _actor(user):
    return User.get_by_id(user.id)


def _account(user, **values):
    values.setdefault("name", "Nordwind GmbH")
    with db.connection_context():
        return Account.create_account(_actor(user), **values)


def _contact(user, **values):
    values.setdefault("name", "Dana Fischer")
    with db.connection_context():
        return Contact.create_contact(_actor(user), **values)


def _product(user, **values):
    values.setdefault("sku", "SC-1")
    values.setdefault("name", "Barcode scanner")
    values.setdefault("list_price", "199.90")
    with db.connection_context():
        return Product.create_product(_actor(user), **values)


def _fresh(record):
    with db.connection_context():
        return type(record).get_by_id(record.id)


def _count(model):
    with db.connection_context():
        return model.select().count()


def _events(kind, record_id):
    with db.connection_context():
        return list(HistoryEvent.select().where((HistoryEvent.record_type == kind)
                                                & (HistoryEvent.record_id == record_id)).order_by(HistoryEvent.id))


def _field_error(html, name):
    """The message shown at a form field (data-field=name), or None."""
    block = re.search(rf'data-field="{name}".*?(?=data-field=|</form>)', html, re.S)
    assert block, f"no field {name} in the form"
    message = re.search(r'class="field-error"[^>]*>([^<]*)<', block.group(0))
    return message.group(1) if message else None


PASSWORD = "correct-horse-9"


def _login_as(client, email, role):
    """Log the (anonymous) `client` fixture in as a new user with `role`."""
    with db.connection_context():
        User.create_user(email, PASSWORD, name=f"{role.capitalize()} Person", role=role)
    assert client.login(email, PASSWORD).status_code == 302
    return client


def _png(width=2, height=2, padding=0):
    """A real (tiny) PNG image; `padding` adds an ancillary chunk to make it larger."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    if padding:
        body += chunk(b"tEXt", b"Comment\x00" + b"x" * padding)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# ----- accounts -------------------------------------------------------------------------------------------

def test_account_create_form_and_detail_page(logged_in, user):
    form = logged_in.get("/accounts/new")
    assert form.status_code == 200 and 'name="name"' in form.get_data(as_text=True)
    assert 'value="DE"' in form.get_data(as_text=True)
    resp = logged_in.form_post("/accounts", {"name": "Nordwind GmbH", "vat_id": "DE123456789",
                                             "email": "INFO@nordwind.example", "city": "Hamburg", "country": "de"})
    assert resp.status_code == 302
    with db.connection_context():
        account = Account.get(Account.name == "Nordwind GmbH")
        assert account.email == "info@nordwind.example" and account.owner_id == user.id and account.country == "DE"
    assert resp.location.endswith(f"/accounts/{account.id}")
    assert [e.action for e in _events("account", account.id)] == ["create"]
    page = logged_in.get(f"/accounts/{account.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html and 'id="panel"' in html
    assert f'id="version-account-{account.id}"' in html and "DE123456789" in html and "Hamburg" in html
    assert "HX-Request" in page.headers["Vary"]
    fragment = logged_in.hx_get(f"/accounts/{account.id}")
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and body.lstrip().startswith('<aside id="panel"') and "<html" not in body
    assert 'id="timeline-account-' in body and "created it" in body


@pytest.mark.parametrize("data, field, message", [
    ({"name": ""}, "name", "This field is required."),
    ({"name": "   "}, "name", "This field is required."),
    ({"name": "x" * 201}, "name", "At most 200 characters"),
    ({"name": "Acme", "email": "not-an-email"}, "email", "Enter a valid email address"),
    ({"name": "Acme", "phone": "call me"}, "phone", "Enter a phone number"),
    ({"name": "Acme", "country": "DEU"}, "country", "At most 2 characters"),
    ({"name": "Acme", "country": "D1"}, "country", "Use a two-letter country code such as DE."),
    ({"name": "Acme", "country": "UK"}, "country", "UK is not a country code: the United Kingdom&#39;s is GB."),
    ({"name": "Acme", "country": "QQ"}, "country", "QQ is not a country code: use one such as DE, AT or GB."),
    ({"name": "Acme", "vat_id": "V" * 41}, "vat_id", "At most 40 characters"),
])
def test_account_create_refused_with_the_message_at_the_field(logged_in, data, field, message):
    resp = logged_in.form_post("/accounts", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in (_field_error(html, field) or "")
    assert "<html" in html and 'id="account-form"' in html
    assert _count(Account) == 0 and _count(HistoryEvent) == 0


def test_account_create_refusal_keeps_the_typed_values_escaped(logged_in):
    resp = logged_in.form_post("/accounts", {"name": '<b>"Acme"</b>', "email": "bad"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "&lt;b&gt;&#34;Acme&#34;&lt;/b&gt;" in html and '<b>"Acme"</b>' not in html


def test_account_create_by_htmx_gets_the_form_fragment_on_refusal(logged_in):
    resp = logged_in.hx_post("/accounts", {"name": ""})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "<html" not in html and 'id="account-form"' in html


def test_account_inline_edit_saves_validates_and_refuses_stale(logged_in, user):
    account = _account(user, email="old@nordwind.example")
    edit = logged_in.hx_get(f"/accounts/{account.id}/fields/city/edit")
    assert edit.status_code == 200 and 'name="city"' in edit.get_data(as_text=True)
    ok = logged_in.hx_post(f"/accounts/{account.id}/fields/name", {"name": "Nordwind Logistik GmbH", "version": "1"})
    html = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "Nordwind Logistik GmbH" in html
    assert f'id="version-account-{account.id}"' in html and 'value="2"' in html
    assert f'id="head-account-{account.id}"' in html and f'id="timeline-account-{account.id}"' in html
    assert _fresh(account).name == "Nordwind Logistik GmbH" and _fresh(account).version == 2
    events = _events("account", account.id)
    assert [e.action for e in events] == ["create", "update"]
    assert events[-1].change_map == {"name": ["Nordwind GmbH", "Nordwind Logistik GmbH"]}

    same = logged_in.hx_post(f"/accounts/{account.id}/fields/name", {"name": "Nordwind Logistik GmbH", "version": "2"})
    assert same.status_code == 200 and len(_events("account", account.id)) == 2

    bad = logged_in.hx_post(f"/accounts/{account.id}/fields/email", {"email": "nope", "version": "2"})
    assert bad.status_code == 422 and "Enter a valid email address" in bad.get_data(as_text=True)
    empty = logged_in.hx_post(f"/accounts/{account.id}/fields/name", {"name": "", "version": "2"})
    assert empty.status_code == 422 and "This field is required." in empty.get_data(as_text=True)
    long = logged_in.hx_post(f"/accounts/{account.id}/fields/city", {"city": "x" * 101, "version": "2"})
    assert long.status_code == 422 and "At most 100 characters" in long.get_data(as_text=True)
    assert _fresh(account).email == "old@nordwind.example" and _fresh(account).version == 2

    stale = logged_in.hx_post(f"/accounts/{account.id}/fields/city", {"city": "Bremen", "version": "1"})
    body = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "changed by Sam Seller" in body and 'value="2"' in body
    assert _fresh(account).city == "" and len(_events("account", account.id)) == 2


def test_account_inline_edit_without_javascript_redirects_to_the_panel(logged_in, user):
    account = _account(user)
    page = logged_in.get(f"/accounts/{account.id}/fields/city/edit")
    assert page.status_code == 200 and "<html" in page.get_data(as_text=True)
    resp = logged_in.form_post(f"/accounts/{account.id}/fields/city", {"city": "Kiel", "version": "1"})
    assert resp.status_code == 302 and resp.location.endswith(f"/accounts/{account.id}")
    assert _fresh(account).city == "Kiel"


def test_account_owner_is_reassigned_by_a_manager_not_by_a_seller(logged_in, user):
    account = _account(user)
    with db.connection_context():
        team = Team.create(name="North")
        other = User.create_user("olga@example.com", "long-enough-9", "Olga Other", "seller", team=team)
        User.create_user("mia@example.com", PASSWORD, "Mia Manager", "manager", team=team)
        User.update(team=team).where(User.id == user.id).execute()
    refused = logged_in.hx_post(f"/accounts/{account.id}/fields/owner", {"owner": str(other.id), "version": str(account.version)})
    assert refused.status_code == 403 and "Only a manager can reassign the owner" in refused.get_data(as_text=True)
    with db.connection_context():
        assert Account.get_by_id(account.id).owner_id == user.id
    logged_in.login("mia@example.com")
    resp = logged_in.hx_post(f"/accounts/{account.id}/fields/owner", {"owner": str(other.id), "version": str(account.version)})
    assert resp.status_code == 200 and "Olga Other" in resp.get_data(as_text=True)
    bad = logged_in.hx_post(f"/accounts/{account.id}/fields/owner", {"owner": "999999", "version": str(account.version + 1)})
    assert bad.status_code == 422 and "Unknown user" in bad.get_data(as_text=True)
    with db.connection_context():
        assert Account.get_by_id(account.id).owner_id == other.id


def test_unknown_records_are_404(logged_in):
    for path in ("/accounts/999", "/contacts/999", "/products/999", "/accounts/999/fields/name/edit",
                 "/accounts/1/fields/nope/edit"):
        assert logged_in.get(path).status_code == 404, path


def test_account_panel_lists_contacts_and_deals(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        proposed = make_proposed(actor)
        invoice = make_draft_invoice(actor)
        account = proposed.account
        other_account = invoice.account
        quote = Quote.get(Quote.opportunity == proposed.id)
        extra = Contact.create_contact(actor, name="Erik Extra", account=account.id, email="erik@x.example")
    html = logged_in.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert f'href="/contacts/{proposed.contact_id}"' in html and "Erik Extra" in html
    assert f'href="/contacts/new?account={account.id}"' in html
    assert f'data-record="opportunity:{proposed.id}"' in html and proposed.topic in html
    assert f'href="/opportunities/{proposed.id}"' in html
    assert quote.display_number in html
    assert f'data-record="invoice:{invoice.id}"' not in html
    other = logged_in.get(f"/accounts/{other_account.id}").get_data(as_text=True)
    assert f'data-record="invoice:{invoice.id}"' in other and f'data-record="order:{invoice.order_id}"' in other
    contact = logged_in.get(f"/contacts/{extra.id}").get_data(as_text=True)
    assert f'href="/accounts/{account.id}"' in contact and "No deals yet." in contact
    deal_contact = logged_in.get(f"/contacts/{proposed.contact_id}").get_data(as_text=True)
    assert f'data-record="opportunity:{proposed.id}"' in deal_contact and quote.display_number in deal_contact


def test_account_list_filters_sorts_and_pages(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        for i in range(55):
            Account.create_account(actor, name=f"Firm {i:02d}", city="Berlin" if i % 2 else "Hamburg")
        Account.create_account(actor, name="100% Bio AG", vat_id="DE999")
        Account.create_account(actor, name="Under_score KG")
        first = Account.get(Account.name == "Firm 00")
        Contact.create_contact(actor, name="A", account=first.id)
        Contact.create_contact(actor, name="B", account=first.id)
    page1 = logged_in.get("/accounts").get_data(as_text=True)
    assert "1–50 of 57" in page1 and 'rel="next"' in page1
    assert page1.index("100% Bio AG") < page1.index("Firm 00")
    row = re.search(rf'data-record="account:{first.id}".*?</tr>', page1, re.S).group(0)
    assert '<td class="num">2</td>' in row
    page2 = logged_in.get("/accounts?page=2").get_data(as_text=True)
    assert "51–57 of 57" in page2 and "Under_score KG" in page2
    desc = logged_in.get("/accounts?sort=-name").get_data(as_text=True)
    assert desc.index("Under_score KG") < desc.index("Firm 54")
    hamburg = logged_in.get("/accounts?q=hamburg").get_data(as_text=True)
    assert "of 28" in hamburg and "Firm 01" not in hamburg
    percent = logged_in.get("/accounts?q=%25").get_data(as_text=True)
    assert "1–1 of 1" in percent and "100% Bio AG" in percent
    underscore = logged_in.get("/accounts?q=_").get_data(as_text=True)
    assert "1–1 of 1" in underscore and "Under_score KG" in underscore
    assert "1–1 of 1" in logged_in.get("/accounts?q=de999").get_data(as_text=True)
    fragment = logged_in.hx_get("/accounts?q=firm&sort=-created&page=2").get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="list"') and "51–55 of 55" in fragment
    for junk in ("/accounts?sort=nonsense", "/accounts?page=abc", "/accounts?page=-4", "/accounts?q=" + "x" * 1000):
        assert logged_in.get(junk).status_code == 200, junk


# ----- contacts -------------------------------------------------------------------------------------------

def test_contact_create_at_an_account(logged_in, user):
    account = _account(user)
    form = logged_in.get(f"/contacts/new?account={account.id}").get_data(as_text=True)
    assert f'<option value="{account.id}" selected>' in form
    resp = logged_in.form_post("/contacts", {"name": "Dana Fischer", "email": "dana@nordwind.example",
                                             "account": str(account.id), "job_title": "Buyer"})
    assert resp.status_code == 302
    with db.connection_context():
        contact = Contact.get(Contact.name == "Dana Fischer")
        assert contact.account_id == account.id and contact.job_title == "Buyer"
    assert resp.location.endswith(f"/contacts/{contact.id}")
    assert [e.action for e in _events("contact", contact.id)] == ["create"]
    html = logged_in.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert f'href="/accounts/{account.id}"' in html and "Nordwind GmbH" in html
    assert "Dana Fischer" in logged_in.get(f"/accounts/{account.id}").get_data(as_text=True)


def test_contact_without_account(logged_in):
    resp = logged_in.form_post("/contacts", {"name": "Paula Private", "account": ""})
    assert resp.status_code == 302
    with db.connection_context():
        assert Contact.get(Contact.name == "Paula Private").account_id is None


@pytest.mark.parametrize("data, field, message", [
    ({"name": ""}, "name", "This field is required."),
    ({"name": "y" * 201}, "name", "At most 200 characters"),
    ({"name": "Dana", "email": "dana@"}, "email", "Enter a valid email address"),
    ({"name": "Dana", "account": "987654"}, "account", "Unknown account."),
    ({"name": "Dana", "account": "abc"}, "account", "Unknown account."),
    ({"name": "Dana", "notes": "n" * 5001}, "notes", "At most 5000 characters"),
])
def test_contact_create_refused(logged_in, data, field, message):
    resp = logged_in.form_post("/contacts", data)
    assert resp.status_code == 422
    assert message in (_field_error(resp.get_data(as_text=True), field) or "")
    assert _count(Contact) == 0 and _count(HistoryEvent) == 0


def test_contact_inline_edit_account_and_stale(logged_in, user):
    first = _account(user)
    second = _account(user, name="Südwind AG")
    contact = _contact(user, account=first.id)
    edit = logged_in.hx_get(f"/contacts/{contact.id}/fields/account/edit").get_data(as_text=True)
    assert "Südwind AG" in edit and "<select" in edit
    ok = logged_in.hx_post(f"/contacts/{contact.id}/fields/account", {"account": str(second.id), "version": "1"})
    assert ok.status_code == 200 and "Südwind AG" in ok.get_data(as_text=True)
    assert _fresh(contact).account_id == second.id
    assert _events("contact", contact.id)[-1].change_map == {"account": [first.id, second.id]}
    bad = logged_in.hx_post(f"/contacts/{contact.id}/fields/account", {"account": "999999", "version": "2"})
    assert bad.status_code == 422 and "Unknown account." in bad.get_data(as_text=True)
    stale = logged_in.hx_post(f"/contacts/{contact.id}/fields/email", {"email": "x@y.example", "version": "1"})
    assert stale.status_code == 409 and _fresh(contact).email == ""
    assert len(_events("contact", contact.id)) == 2


def test_contact_list_filters_by_account_and_text(logged_in, user):
    first = _account(user)
    second = _account(user, name="Südwind AG")
    _contact(user, name="Anna Alpha", account=first.id, email="anna@alpha.example")
    _contact(user, name="Bert Beta", account=second.id)
    _contact(user, name="Carla Private")
    everyone = logged_in.get("/contacts").get_data(as_text=True)
    assert "of 3" in everyone and everyone.index("Anna Alpha") < everyone.index("Bert Beta") < everyone.index("Carla")
    at_first = logged_in.get(f"/contacts?account={first.id}").get_data(as_text=True)
    assert "Anna Alpha" in at_first and "Bert Beta" not in at_first and "Carla" not in at_first
    none = logged_in.get("/contacts?account=none").get_data(as_text=True)
    assert "Carla Private" in none and "Anna Alpha" not in none
    by_account_name = logged_in.get("/contacts?q=s%C3%BCdwind").get_data(as_text=True)
    assert "Bert Beta" in by_account_name and "Anna Alpha" not in by_account_name
    by_email = logged_in.get("/contacts?q=ALPHA.example").get_data(as_text=True)
    assert "Anna Alpha" in by_email and "of 1" in by_email
    by_account_desc = logged_in.get("/contacts?sort=-account").get_data(as_text=True)
    assert by_account_desc.index("Bert Beta") < by_account_desc.index("Anna Alpha")
    assert logged_in.get("/contacts?account=12345678901234567890").status_code == 200


# ----- products -------------------------------------------------------------------------------------------

def test_product_create_and_find_in_the_list(logged_in):
    resp = logged_in.form_post("/products", {"sku": "LIC-10", "name": "Licence pack", "unit": "licence",
                                             "list_price": "1.234,50".replace(".", ""), "tax_rate": "7",
                                             "description": "Ten seats"})
    assert resp.status_code == 302
    with db.connection_context():
        product = Product.get(Product.sku == "LIC-10")
    assert product.list_price == Decimal("1234.50") and product.tax_rate == Decimal("7.00") and product.active
    assert resp.location.endswith(f"/products/{product.id}")
    listing = logged_in.get("/products?q=lic").get_data(as_text=True)
    assert f'data-record="product:{product.id}"' in listing and "1,234.50" in listing
    panel = logged_in.hx_get(f"/products/{product.id}").get_data(as_text=True)
    assert panel.lstrip().startswith('<aside id="panel"') and "Deactivate" in panel and 'data-open-lines="0"' in panel


@pytest.mark.parametrize("data, field, message", [
    ({"sku": "", "name": "X", "list_price": "1"}, "sku", "This field is required."),
    ({"sku": "S" * 41, "name": "X", "list_price": "1"}, "sku", "At most 40 characters"),
    ({"sku": "NEW-1", "name": "", "list_price": "1"}, "name", "This field is required."),
    ({"sku": "NEW-1", "name": "X", "list_price": "-5"}, "list_price", "Must be at least 0"),
    ({"sku": "NEW-1", "name": "X", "list_price": ""}, "list_price", "This field is required."),
    ({"sku": "NEW-1", "name": "X", "list_price": "ten"}, "list_price", "Enter a number"),
    ({"sku": "NEW-1", "name": "X", "list_price": "1", "tax_rate": "150"}, "tax_rate", "Must be at most 100"),
    ({"sku": "NEW-1", "name": "X", "list_price": "1", "tax_rate": "-1"}, "tax_rate", "Must be at least 0"),
    ({"sku": "NEW-1", "name": "X", "list_price": "1", "tax_rate": ""}, "tax_rate", "This field is required."),
    ({"sku": "NEW-1", "name": "X", "list_price": "1", "unit": "bucket"}, "unit", "Choose one of"),
    ({"sku": "NEW-1", "name": "X", "list_price": "1", "unit": ""}, "unit", "Choose one."),
])
def test_product_create_refused(logged_in, data, field, message):
    data = dict({"unit": "piece", "tax_rate": "19"}, **data)
    resp = logged_in.form_post("/products", data)
    assert resp.status_code == 422
    assert message in (_field_error(resp.get_data(as_text=True), field) or "")
    assert _count(Product) == 0 and _count(HistoryEvent) == 0


def test_product_vat_exemption_on_the_form_and_inline(logged_in, user):
    form = {"sku": "EXM-1", "name": "Exam fee", "unit": "piece", "list_price": "250", "tax_rate": "19",
            "tax_exemption": "§ 4 Nr. 21 UStG", "supply": "services"}
    refused = logged_in.form_post("/products", form)
    assert refused.status_code == 422 and _count(Product) == 0
    assert "Only an item without VAT can be exempt" in _field_error(refused.get_data(as_text=True), "tax_exemption")
    assert logged_in.form_post("/products", dict(form, tax_rate="0")).status_code == 302
    with db.connection_context():
        exam = Product.get(Product.sku == "EXM-1")
    assert exam.tax_exemption == "§ 4 Nr. 21 UStG"
    panel = logged_in.hx_get(f"/products/{exam.id}").get_data(as_text=True)
    assert "VAT exemption" in panel and "§ 4 Nr. 21 UStG" in panel
    # raising the rate ends the exemption, and the panel's exemption field says so at once
    raised = logged_in.hx_post(f"/products/{exam.id}/fields/tax_rate", {"tax_rate": "19", "version": "1"})
    html = raised.get_data(as_text=True)
    assert raised.status_code == 200 and f'id="field-product-{exam.id}-tax_exemption" hx-swap-oob="true"' in html
    assert "§ 4 Nr. 21 UStG" not in html.split(f'id="field-product-{exam.id}-tax_exemption"')[1].split("</div>")[0]
    assert _fresh(exam).tax_exemption == ""
    inline = logged_in.hx_post(f"/products/{exam.id}/fields/tax_exemption", {"tax_exemption": "§ 4 Nr. 14 UStG",
                                                                                "version": "2"})
    assert inline.status_code == 422 and "Only an item without VAT can be exempt" in inline.get_data(as_text=True)


def test_product_duplicate_sku_is_refused_on_create_and_edit(logged_in, user):
    first = _product(user, sku="SC-1")
    second = _product(user, sku="SC-2")
    resp = logged_in.form_post("/products", {"sku": "SC-1", "name": "Copy", "list_price": "5", "unit": "piece",
                                             "tax_rate": "19"})
    assert resp.status_code == 422
    assert _field_error(resp.get_data(as_text=True), "sku") == "Another product already uses this SKU."
    assert _count(Product) == 2
    edit = logged_in.hx_post(f"/products/{second.id}/fields/sku", {"sku": "SC-1", "version": "1"})
    assert edit.status_code == 422 and "Another product already uses this SKU." in edit.get_data(as_text=True)
    assert _fresh(second).sku == "SC-2" and len(_events("product", second.id)) == 1
    assert _fresh(first).sku == "SC-1"


def test_product_inline_edits_are_validated(logged_in, user):
    product = _product(user)
    for name, value, message in (("list_price", "-1", "Must be at least 0"),
                                 ("list_price", "", "This field is required."),
                                 ("tax_rate", "101", "Must be at most 100"), ("tax_rate", "abc", "Enter a number"),
                                 ("unit", "", "Choose one."), ("name", "", "This field is required.")):
        resp = logged_in.hx_post(f"/products/{product.id}/fields/{name}", {name: value, "version": "1"})
        assert resp.status_code == 422, (name, value)
        assert message in resp.get_data(as_text=True), (name, value)
    assert _fresh(product).version == 1 and len(_events("product", product.id)) == 1
    ok = logged_in.hx_post(f"/products/{product.id}/fields/list_price", {"list_price": "249.00", "version": "1"})
    assert ok.status_code == 200 and "249.00" in ok.get_data(as_text=True)
    assert _fresh(product).list_price == Decimal("249.00")
    stale = logged_in.hx_post(f"/products/{product.id}/fields/tax_rate", {"tax_rate": "7", "version": "1"})
    assert stale.status_code == 409 and _fresh(product).tax_rate == Decimal("19.00")


def test_product_deactivate_and_reactivate(logged_in, user):
    product = _product(user)
    with db.connection_context():
        deal = make_opportunity(User.get_by_id(user.id))
    search = logged_in.hx_get(f"/products/search?target=opportunity:{deal.id}&q=scan").get_data(as_text=True)
    assert "Barcode scanner" in search
    off = logged_in.hx_post(f"/products/{product.id}/active", {"active": "0", "version": "1"})
    html = off.get_data(as_text=True)
    assert off.status_code == 200 and html.lstrip().startswith('<aside id="panel"') and "Reactivate" in html
    assert _fresh(product).active is False
    after = logged_in.hx_get(f"/products/search?target=opportunity:{deal.id}&q=scan").get_data(as_text=True)
    assert "No product matches." in after
    again = logged_in.hx_post(f"/products/{product.id}/active", {"active": "0", "version": "2"})
    assert again.status_code == 200 and len(_events("product", product.id)) == 2
    stale = logged_in.hx_post(f"/products/{product.id}/active", {"active": "1", "version": "1"})
    assert stale.status_code == 409 and "changed by" in stale.get_data(as_text=True)
    assert _fresh(product).active is False
    on = logged_in.form_post(f"/products/{product.id}/active", {"active": "1", "version": "2"})
    assert on.status_code == 302 and _fresh(product).active is True
    assert [e.change_map for e in _events("product", product.id)[1:]] == [{"active": [True, False]},
                                                                         {"active": [False, True]}]


def test_product_list_filters_active_sorts_and_pages(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        for i in range(52):
            Product.create_product(actor, sku=f"P-{i:03d}", name=f"Part {i:03d}", list_price=str(100 - i))
        Product.create_product(actor, sku="OLD-1", name="Old model", list_price="5", active=False)
    active = logged_in.get("/products").get_data(as_text=True)
    assert "1–50 of 52" in active and "Old model" not in active
    assert "51–52 of 52" in logged_in.get("/products?page=2").get_data(as_text=True)
    inactive = logged_in.get("/products?status=inactive").get_data(as_text=True)
    assert "Old model" in inactive and "of 1" in inactive
    assert "of 53" in logged_in.get("/products?status=all").get_data(as_text=True)
    cheap_first = logged_in.get("/products?sort=price&status=all").get_data(as_text=True)
    assert cheap_first.index("OLD-1") < cheap_first.index("P-051") < cheap_first.index("P-010")
    assert "P-000" not in cheap_first
    assert "P-000" in logged_in.get("/products?sort=price&status=all&page=2").get_data(as_text=True)
    by_sku_desc = logged_in.get("/products?sort=-sku").get_data(as_text=True)
    assert by_sku_desc.index("P-051") < by_sku_desc.index("P-010") and "P-000" not in by_sku_desc
    assert "1–1 of 1" in logged_in.get("/products?q=part+007").get_data(as_text=True)


def test_product_panel_counts_open_opportunity_lines(logged_in, user):
    product = _product(user)
    with db.connection_context():
        actor = _actor(user)
        open_deal = make_opportunity(actor)
        open_deal.add_line(actor, product=product.id, quantity="2")
        open_deal.add_line(actor, product=product.id, quantity="1")
        lost_deal = make_opportunity(actor)
        lost_deal.add_line(actor, product=product.id, quantity="1")
        lost_deal.close_as_lost(actor, close_reason="price")
    html = logged_in.get(f"/products/{product.id}").get_data(as_text=True)
    assert 'data-open-lines="2"' in html
    assert f'data-record="opportunity:{open_deal.id}"' in html
    assert f'data-record="opportunity:{lost_deal.id}"' not in html


# ----- settings -------------------------------------------------------------------------------------------

SETTINGS_FORM = {"company_name": "Falkenberg IT GmbH", "address": "Gutenbergstraße 14\n70176 Stuttgart",
                 "vat_id": "DE287654321", "tax_number": "93815/08152",
                 "company_register": "Amtsgericht Stuttgart, HRB 765432",
                 "legal_info": "Managing directors: Jana Falk, Tim Berg", "email": "info@falkenberg.example",
                 "phone": "+49 711 225",
                 "bank_details": "IBAN DE89 3704 0044 0532 0130 00", "currency": "usd",  # ignored: CURRENCY rules
                 "quote_validity_days": "45", "payment_terms_days": "14",
                 "payment_terms_text": "Payable within 14 days.", "rot_days_develop": "21",
                 "rot_days_propose": "12", "rot_days_close": "5"}


def _settings():
    with db.connection_context():
        return Settings.load()


def _logo_bytes_selected(request):
    """Whether any query run by `request()` reads the settings' logo bytes."""
    import logging
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(str(record.msg))
    logger = logging.getLogger("peewee")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        assert request().status_code == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any('"settings"' in sql for sql in seen)
    return any('"settings"' in sql and '"logo",' in sql.replace('"logo" ', '"logo",') for sql in seen)


def test_settings_everyone_may_look_but_sellers_may_not_change(logged_in):
    with db.connection_context():
        Settings.update(tax_number="93815/08152", company_register="Amtsgericht Stuttgart, HRB 765432",
                        legal_info="Managing directors: <Jana> Falk").execute()
    page = logged_in.get("/settings")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "only a manager or an admin can change them" in html
    assert "settings-readonly" in html and "<input id=\"f-company_name\"" not in html and "Save settings" not in html
    assert 'href="/products"' in html
    assert "CURRENCY" in html
    for label, value in (("Tax number", "93815/08152"), ("Company register", "Amtsgericht Stuttgart, HRB 765432"),
                         ("Legal information", "Managing directors: &lt;Jana&gt; Falk")):
        assert f"<dt>{label}</dt>" in html and value in html
    before = _settings().company_name
    refused = logged_in.form_post("/settings", dict(SETTINGS_FORM))
    assert refused.status_code == 403
    assert "Only a manager or an admin can change the company settings" in refused.get_data(as_text=True)
    assert logged_in.form_post("/settings/logo/delete").status_code == 403
    assert logged_in.hx_post("/settings", dict(SETTINGS_FORM)).status_code == 403
    assert _settings().company_name == before
    assert _count(HistoryEvent) == 0


@pytest.mark.parametrize("role", ["manager", "admin"])
def test_settings_saved_by_a_manager_or_admin(client, role):
    client = _login_as(client, f"{role}@example.com", role)
    page = client.get("/settings").get_data(as_text=True)
    assert "Save settings" in page and "settings-readonly" not in page
    resp = client.form_post("/settings", dict(SETTINGS_FORM))
    assert resp.status_code == 302 and resp.location.endswith("/settings")
    s = _settings()
    assert (s.company_name, s.currency) == ("Falkenberg IT GmbH", "EUR")
    assert (s.quote_validity_days, s.payment_terms_days) == (45, 14)
    assert (s.rot_days_develop, s.rot_days_propose, s.rot_days_close) == (21, 12, 5)
    assert s.address == "Gutenbergstraße 14\n70176 Stuttgart"
    assert (s.tax_number, s.company_register, s.legal_info) == (
        "93815/08152", "Amtsgericht Stuttgart, HRB 765432", "Managing directors: Jana Falk, Tim Berg")
    events = _events("settings", s.id)
    assert len(events) == 1 and events[0].change_map["quote_validity_days"] == [30, 45]
    again = client.form_post("/settings", dict(SETTINGS_FORM))
    assert again.status_code == 302 and len(_events("settings", s.id)) == 1
    assert "Falkenberg IT GmbH" in client.get("/settings").get_data(as_text=True)


@pytest.mark.parametrize("field, value, message", [
    ("company_name", "", "This field is required."),
    ("company_name", "c" * 201, "At most 200 characters"),
    ("address", "a" * 1001, "At most 1000 characters"),
    ("email", "nope", "Enter a valid email address"),
    ("phone", "ring ring", "Enter a phone number"),
    ("address", "Street 1\nBuilding 2\nFloor 3\n12345 Town\nRegion\nCountry", "At most 5 lines"),
    ("bank_details", "Bank\nIBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX\nHolder\nBranch", "At most 4 lines"),
    ("legal_info", "Managing directors: A, B\nRegistered office: Stuttgart\nShare capital: 25,000",
     "At most 2 lines: they are printed in the footer of every document."),
    ("tax_number", "93815/\x0708152", "Contains control characters"),
    ("company_register", "Amtsgericht Stuttgart\nHRB 765432", "Use a single line"),
    ("legal_info", "Managing directors: A\u202eB", "invisible direction override"),
    ("tax_number", "9" * 41, "At most 40 characters"),
    ("company_register", "HRB " * 31, "At most 120 characters"),
    ("quote_validity_days", "0", "Enter a number from 1 to 3650"),
    ("quote_validity_days", "abc", "Enter a whole number"),
    ("payment_terms_days", "-1", "Enter a number from 0 to 3650"),
    ("payment_terms_days", "99999999999999", "Enter a whole number"),
    ("rot_days_close", "0", "Enter a number from 1 to 365"),
    ("rot_days_develop", "", "This field is required."),
])
def test_settings_refused_with_the_message_at_the_field(client, field, value, message):
    client = _login_as(client, "mia@example.com", "manager")
    before = _settings().__data__
    data = dict(SETTINGS_FORM, **{field: value})
    resp = client.form_post("/settings", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in (_field_error(html, field) or "")
    assert "Nothing was saved" in html and f'href="#f-{field}"' in html
    assert _settings().__data__ == before and _count(HistoryEvent) == 0


def test_settings_logo_upload_serve_and_remove(client):
    client = _login_as(client, "mia@example.com", "manager")
    png = _png()
    resp = client.form_post("/settings", dict(SETTINGS_FORM, logo=(__import__("io").BytesIO(png), "logo.png")),
                            content_type="multipart/form-data")
    assert resp.status_code == 302
    s = _settings()
    assert bytes(s.logo) == png and s.logo_mime == "image/png"
    served = client.get("/settings/logo")
    assert served.status_code == 200 and served.data == png and served.headers["Content-Type"] == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/settings/logo", headers={"If-None-Match": served.headers["ETag"]}).status_code == 304
    assert "/settings/logo?v=" in client.get("/settings").get_data(as_text=True)
    assert _logo_bytes_selected(lambda: client.get("/board")) is False  # pages need names and numbers only
    with db.connection_context():
        light = Settings.load(logo=False)
        assert light.has_logo and light.company_name == SETTINGS_FORM["company_name"]
        with pytest.raises(RuntimeError):
            light.save()  # saving a row without its logo would drop the logo
    kept = client.form_post("/settings", dict(SETTINGS_FORM, company_name="Renamed GmbH"))
    assert kept.status_code == 302 and bytes(_settings().logo) == png
    removed = client.form_post("/settings/logo/delete")
    assert removed.status_code == 302 and _settings().logo is None and _settings().logo_mime is None
    assert client.get("/settings/logo").status_code == 404
    logo_events = [e for e in _events("settings", s.id) if "logo" in e.change_map]
    assert len(logo_events) == 2 and logo_events[-1].change_map["logo"][1] is None


@pytest.mark.parametrize("name, content, message", [
    ("logo.png", b"this is just text pretending to be a PNG\n" * 3, "not one of these"),
    ("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not one of these"),
    ("logo.png", b"", "The file is empty."),
    ("big.png", None, "at most 512 KB"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "scripts"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "event handlers"),
    ("logo.svg", b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg>&a;</svg>', "entity"),
    ("logo.svg", b"<svg><unclosed></svg>", "not well-formed"),
    ("logo.svg", b"<html><body>hi</body></html>", "not an SVG"),
    ("logo.jpg", b"GIF89a\x01\x00\x01\x00", "not one of these"),
])
def test_settings_logo_refused_by_content(client, name, content, message):
    import io
    if content is None:
        content = _png(padding=600 * 1024)
    client = _login_as(client, "mia@example.com", "manager")
    resp = client.form_post("/settings", dict(SETTINGS_FORM, logo=(io.BytesIO(content), name)),
                            content_type="multipart/form-data")
    assert resp.status_code == 422
    assert message in (_field_error(resp.get_data(as_text=True), "logo") or "")
    s = _settings()
    assert s.logo is None and s.company_name != SETTINGS_FORM["company_name"]


def test_settings_accepts_svg_and_jpeg_logos_served_sandboxed(client):
    import io
    client = _login_as(client, "mia@example.com", "manager")
    svg = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
           b'<rect width="10" height="10" fill="#3b5bdb"/></svg>')
    assert client.form_post("/settings", dict(SETTINGS_FORM, logo=(io.BytesIO(svg), "logo.svg")),
                            content_type="multipart/form-data").status_code == 302
    served = client.get("/settings/logo")
    assert served.headers["Content-Type"] == "image/svg+xml" and served.data == svg
    assert "sandbox" in served.headers["Content-Security-Policy"]
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32 + b"\xff\xd9"
    assert client.form_post("/settings", dict(SETTINGS_FORM, logo=(io.BytesIO(jpeg), "photo.svg")),
                            content_type="multipart/form-data").status_code == 302
    assert client.get("/settings/logo").headers["Content-Type"] == "image/jpeg"


# ----- search ---------------------------------------------------------------------------------------------

def _search_world(user):
    with db.connection_context():
        actor = _actor(user)
        proposed = make_proposed(actor, name="Olga Oldenburg", company="Oldenburg Freight GmbH",
                                 email="olga@oldenburg.example", topic="Cold storage sensors")
        quote = Quote.get(Quote.opportunity == proposed.id)
        invoice = make_draft_invoice(actor)
        Invoice.get_by_id(invoice.id).issue(actor)
        invoice = Invoice.get_by_id(invoice.id)
        account = Account.create_account(actor, name="Zeppelin Werke AG", vat_id="DE811122233")
        contact = Contact.create_contact(actor, name="Quentin Quast", email="q.quast@zeppelin.example",
                                         account=account.id)
        lead = make_lead(actor, name="Lara Lead", company="Leadwerk KG", email="lara@leadwerk.example")
    return {"proposed": proposed, "quote": quote, "invoice": invoice, "account": account, "contact": contact,
            "lead": lead}


def _groups(html):
    return {m.group(1): m.start() for m in re.finditer(r'data-group="(\w+)"', html)}


def test_search_finds_every_kind_of_record(logged_in, user):
    w = _search_world(user)
    lead = logged_in.get("/search?q=leadwerk").get_data(as_text=True)
    assert f'data-record="lead:{w["lead"].id}"' in lead and f'href="/leads/{w["lead"].id}"' in lead
    by_email = logged_in.get("/search?q=LARA@LEADWERK").get_data(as_text=True)
    assert f'data-record="lead:{w["lead"].id}"' in by_email
    topic = logged_in.get("/search?q=cold%20STORAGE").get_data(as_text=True)
    assert f'data-record="opportunity:{w["proposed"].id}"' in topic
    assert f'href="/opportunities/{w["proposed"].id}"' in topic
    vat = logged_in.get("/search?q=de8111").get_data(as_text=True)
    assert f'data-record="account:{w["account"].id}"' in vat and f'href="/accounts/{w["account"].id}"' in vat
    account_name = logged_in.get("/search?q=zeppelin").get_data(as_text=True)
    assert f'data-record="account:{w["account"].id}"' in account_name
    assert f'data-record="contact:{w["contact"].id}"' in account_name  # via the email
    contact = logged_in.get("/search?q=quentin").get_data(as_text=True)
    assert f'data-record="contact:{w["contact"].id}"' in contact and f'href="/contacts/{w["contact"].id}"' in contact
    number = w["quote"].number
    for text in (f"Q-{number:05d}", f"q-{number:05d}", str(number), f"Q-{number:05d} rev 1", f"{number:05d}"):
        html = logged_in.get("/search", query_string={"q": text}).get_data(as_text=True)
        assert f'data-record="quote:{w["quote"].id}"' in html, text
    assert f'data-record="quote:{w["quote"].id}"' not in logged_in.get(
        "/search", query_string={"q": f"Q-{number:05d} rev 2"}).get_data(as_text=True)
    for text in (w["invoice"].number, w["invoice"].number.lower(), w["invoice"].number[-5:]):
        html = logged_in.get("/search", query_string={"q": text}).get_data(as_text=True)
        assert f'data-record="invoice:{w["invoice"].id}"' in html, text
    nothing = logged_in.get("/search?q=xylophone").get_data(as_text=True)
    assert "Nothing found for “xylophone”" in nothing


def test_search_groups_results_by_type_and_limits_each_group(logged_in, user):
    with db.connection_context():
        actor = _actor(user)
        for i in range(13):
            Account.create_account(actor, name=f"Alpha Systems {i:02d}")
        Contact.create_contact(actor, name="Alpha Person")
    html = logged_in.get("/search?q=alpha").get_data(as_text=True)
    groups = _groups(html)
    assert set(groups) == {"accounts", "contacts"} and groups["accounts"] < groups["contacts"]
    assert html.count('data-record="account:') == 10 and "10+" in html
    assert 'href="/accounts?q=alpha"' in html
    fragment = logged_in.hx_get("/search?q=alpha")
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and body.lstrip().startswith("<section id=\"search-results\"")
    assert "<html" not in body


@pytest.mark.parametrize("text", ["%", "_", "%%", "\\", "'", '"', "' OR 1=1 --", "Ünïcödé ✓ 日本語", "x" * 1000,
                                  "Q-", "INV-", "Q-99999999999999999999", "rev", "\x00", "a\x00b", "\u202e", "🙂",
                                  "<script>alert(1)</script>", "    ", "999999999999999999999999"])
def test_search_survives_any_input(logged_in, user, text):
    _account(user, name="100% Bio AG")
    _account(user, name="Plain AG")
    resp = logged_in.get("/search", query_string={"q": text})
    assert resp.status_code == 200, text
    html = resp.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    if text in ("_", "\\", "'", '"'):
        assert "Plain AG" not in html
    if text == "%":
        assert "100% Bio AG" in html and "Plain AG" not in html


def test_search_is_case_insensitive_for_unicode_on_the_stored_case(logged_in, user):
    _contact(user, name="Jürgen Müller", email="jm@example.com")
    for text in ("jürgen", "Müller", "MÜLLER" if _is_postgres() else "müller"):
        html = logged_in.get("/search", query_string={"q": text}).get_data(as_text=True)
        assert "Jürgen Müller" in html, text


def _is_postgres():
    from models.base import is_postgres
    return is_postgres()


def test_search_box_template_and_page(logged_in):
    page = logged_in.get("/search").get_data(as_text=True)
    assert 'name="q"' in page and "Type a name" in page
    from flask import render_template
    app = logged_in.client.application
    with app.test_request_context("/search?q=abc"):
        box = render_template("search/_box.html")
    assert 'action="/search"' in box and 'name="q"' in box and 'aria-label="Search"' in box and 'method="get"' in box


# ----- escaping -------------------------------------------------------------------------------------------

def test_user_text_is_escaped_everywhere(logged_in, user):
    evil = '<img src=x onerror="alert(1)">'
    account = _account(user, name=evil, city=evil[:100])
    contact = _contact(user, name=evil, account=account.id)
    product = _product(user, sku="<b>SKU</b>", name=evil, description=evil)
    pages = [f"/accounts/{account.id}", "/accounts", f"/contacts/{contact.id}", "/contacts",
             f"/products/{product.id}", "/products?status=all", "/search?q=onerror",
             f"/accounts/{account.id}/fields/name/edit"]
    for path in pages:
        html = logged_in.get(path).get_data(as_text=True)
        assert "<img src=x" not in html and "<b>SKU</b>" not in html, path
        assert "&lt;img src=x onerror=" in html, path
    fragment = logged_in.hx_post(f"/accounts/{account.id}/fields/name", {"name": evil + "!", "version": "1"})
    assert "<img src=x" not in fragment.get_data(as_text=True)
