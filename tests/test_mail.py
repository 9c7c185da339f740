"""Emailing documents: a sent quote, an issued invoice, a canceled invoice's credit note go to the customer
with their stored PDF attached, through a real SMTP conversation (a small server in the test process)."""
import re

import pytest

from models import Activity, HistoryEvent, NotAllowed, User, ValidationError, db, mail
from models.base import today
from models.mail import MailNotSent
from smtp_sink import SmtpSink
from test_documents_pdf import active_quote, company, issued_invoice
from tests.builders import fresh, make_proposed, world_counts


@pytest.fixture
def sink():
    """A mail server the installation sends through (SMTP_URL), unset again afterwards."""
    with SmtpSink() as server:
        mail.configure(server.url)
        yield server
    mail.configure("")


def _emails(record):
    return list(HistoryEvent.select().where((HistoryEvent.record_type == record.record_type)
                                            & (HistoryEvent.record_id == record.id)
                                            & (HistoryEvent.action == "email")))


def _form(document, actor, **changes):
    return dict(mail.compose(document, actor), **changes)


def test_a_sent_quote_goes_to_the_customer_with_its_stored_pdf(database, seller, sink):
    company()
    quote = active_quote(seller)
    form = _form(quote, seller)
    contact = quote.contact
    assert form["to"] == contact.email
    assert form["subject"].startswith(f"Quote {quote.display_number}") and "Falkenberg IT-Systeme GmbH" in form["subject"]
    assert form["message"].startswith(f"Dear {contact.name},") and "valid until" in form["message"]
    assert form["message"].rstrip().endswith("Sam Seller\nFalkenberg IT-Systeme GmbH")
    sent, accepted, refused = mail.send_document(seller, quote, dict(form, cc="buyer@example.com"))
    assert refused == [] and sent.id == quote.id and accepted == [contact.email, "buyer@example.com"]
    (sender, recipients, raw), (_, copy_to, copied) = sink.messages
    assert sender == "info@falkenberg-it.de" and recipients == [contact.email, "buyer@example.com"]
    assert copy_to == ["sam@example.com"] and copied == raw  # the seller's blind copy: the same mail
    message = sink.parsed()
    assert message["From"].addresses[0].addr_spec == "info@falkenberg-it.de"
    assert message["From"].addresses[0].display_name == "Sam Seller – Falkenberg IT-Systeme GmbH"
    assert message["Reply-To"].addresses[0].addr_spec == "sam@example.com"  # the customer answers the seller
    assert message["Cc"] == "buyer@example.com" and message["Subject"] == form["subject"]
    assert "sam@example.com" not in str(message["To"]) + str(message["Cc"]) and message["Bcc"] is None
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip() == form["message"].rstrip()
    attachment, = message.iter_attachments()
    assert attachment.get_filename() == quote.file_name and attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == bytes(fresh(quote).pdf)  # the frozen bytes, not a new render
    event, = _emails(quote)
    assert event.actor_id == seller.id and contact.email in event.note and quote.file_name in event.note
    activity = Activity.get((Activity.record_type == "opportunity") & (Activity.record_id == quote.opportunity_id))
    assert (activity.kind, activity.done, activity.subject) == ("email", True, form["subject"])
    assert f"Attached: {quote.file_name}" in activity.body and form["message"].strip() in activity.body


def test_an_issued_invoice_and_a_credit_note_are_sent_as_issued(database, seller, sink):
    company()
    invoice = issued_invoice(seller)
    form = _form(invoice, seller)
    assert form["subject"].startswith(f"Invoice {invoice.number}") and "payable by" in form["message"]
    mail.send_document(seller, invoice, form)
    attachment, = sink.parsed().iter_attachments()
    assert attachment.get_filename() == f"{invoice.number}.pdf"
    assert attachment.get_content() == bytes(fresh(invoice).pdf)  # PDF/A-3 with its Factur-X XML, as frozen
    fresh(invoice).cancel(seller, reason="Wrong delivery address")
    canceled = fresh(invoice)
    form = _form(canceled, seller)
    assert form["subject"].startswith(f"Credit note {canceled.credit_note.number} for invoice {invoice.number}")
    sent, _, _ = mail.send_document(seller, canceled, form)
    attachment, = sink.parsed().iter_attachments()
    assert sent.number == canceled.credit_note.number and attachment.get_filename() == f"{sent.number}.pdf"
    assert attachment.get_content() == bytes(sent.pdf)
    assert len(_emails(invoice)) == 2  # both recorded on the invoice's timeline


def test_a_draft_is_never_emailed(database, seller, sink):
    company()
    draft = make_proposed(seller).quote_in("draft")
    before = world_counts()
    with pytest.raises(NotAllowed) as refused:
        mail.send_document(seller, draft, {"to": "x@example.com", "subject": "Quote", "message": "Hello"})
    assert "only a sent (active) or won quote" in refused.value.message
    assert sink.messages == [] and world_counts() == before


@pytest.mark.parametrize("field, value, message", [
    ("to", "", "customer's email address"),
    ("to", "nobody", "Not an email address: nobody"),
    ("to", "a@example.com, b@@example.com", "Not an email address: b@@example.com"),
    ("to", ", ".join(f"p{i}@example.com" for i in range(11)), "At most 10"),
    ("cc", "boss at example.com", "Not an email address"),
    ("subject", "", "required"),
    ("subject", "Quote\r\nBcc: everyone@example.com", "single line"),  # no header injection
    ("subject", "Quote\u2028Bcc: everyone@example.com", "single line"),  # a Unicode line separator neither
    ("to", "ana\u202e@example.com", "Not an email address"),  # an invisible direction override
    ("to", "jörg@example.com", "only addresses with ASCII letters before the @"),
    ("subject", "x" * 201, "At most 200"),
    ("message", "", "required"),
    ("message", "Hello\x00", "control characters"),
])
def test_bad_input_is_refused_at_the_field_and_nothing_is_sent(database, seller, sink, field, value, message):
    company()
    quote = active_quote(seller)
    before = world_counts()
    with pytest.raises(ValidationError) as refused:
        mail.send_document(seller, quote, _form(quote, seller, **{field: value}))
    assert set(refused.value.fields) == {field} and message in refused.value.fields[field]
    assert sink.messages == [] and world_counts() == before


def test_recipients_the_server_refuses(database, seller, sink):
    company()
    quote = active_quote(seller)
    sink.refuse = {"gone@example.com"}
    sent, accepted, refused = mail.send_document(seller, quote, _form(quote, seller, copy_to_me="",
                                                                     to="gone@example.com, here@example.com"))
    assert (accepted, refused) == (["here@example.com"], ["gone@example.com"]) and sink.messages[0][1] == ["here@example.com"]
    assert "here@example.com" in _emails(quote)[0].note and "gone@" not in _emails(quote)[0].note
    sink.refuse = {"gone@example.com", "here@example.com"}
    before, delivered = world_counts(), len(sink.messages)
    with pytest.raises(MailNotSent) as failed:  # (with the seller's copy asked for: it is not sent alone)
        mail.send_document(seller, quote, _form(quote, seller, to="gone@example.com, here@example.com"))
    assert failed.value.status == 503 and "gone@example.com" in failed.value.fields["to"]
    assert world_counts() == before and len(sink.messages) == delivered
    sink.refuse = set()
    mail.send_document(seller, quote, _form(quote, seller, to="SAM@EXAMPLE.COM"))  # the seller, typed in capitals
    assert sink.messages[-1][1] == ["SAM@EXAMPLE.COM"] and len(sink.messages) == delivered + 1  # once


def test_an_unreachable_or_unsafe_server_sends_nothing_and_records_nothing(database, seller, sink):
    company()
    quote = active_quote(seller)
    before = world_counts()
    with SmtpSink() as closed:
        port = closed.port
    mail.configure(f"smtp://127.0.0.1:{port}?tls=none")  # nothing listens there any more
    with pytest.raises(MailNotSent) as failed:
        mail.send_document(seller, quote, _form(quote, seller))
    assert "could not be reached" in failed.value.message and "not sent" in failed.value.message
    mail.configure(f"smtp://user:secret@127.0.0.1:{sink.port}")  # a password, and no STARTTLS offered
    with pytest.raises(MailNotSent) as unsafe:
        mail.send_document(seller, quote, _form(quote, seller))
    assert "offers no encryption (STARTTLS)" in unsafe.value.message
    assert sink.messages == [] and world_counts() == before
    mail.configure(sink.url)
    company(email="")  # no address to send from
    with pytest.raises(NotAllowed) as no_sender:
        mail.send_document(seller, quote, _form(quote, seller))
    assert "no address to send from" in no_sender.value.message and set(no_sender.value.fields) == {"settings.email"}
    mail.configure(sink.url, "sales@falkenberg-it.de")  # MAIL_FROM
    mail.send_document(seller, quote, _form(quote, seller, copy_to_me=False))
    assert sink.parsed()["From"].addresses[0].addr_spec == "sales@falkenberg-it.de"
    assert len(sink.messages) == 1
    world_counts_after_one_mail = world_counts()
    assert world_counts_after_one_mail["HistoryEvent"] == before["HistoryEvent"] + 1
    mail.configure("")
    with pytest.raises(NotAllowed) as unset:
        mail.send_document(seller, quote, _form(quote, seller))
    assert "SMTP_URL" in unset.value.message


@pytest.mark.parametrize("url, sender", [("http://mail.example.com", ""), ("smtp://", ""),
                                         ("smtp://mail.example.com:99999", ""), ("smtp://mail.example.com:0", ""),
                                         ("smtp://mail.example.com?tls=maybe", ""), ("smtp://a..b", ""),
                                         ("smtp://user:secret@mail.example.com?tls=none", ""),  # password in clear
                                         ("smtp://us%C3%A9r:secret@mail.example.com", ""),  # SMTP logins are ASCII
                                         ("smtp://mail.example.com", "not-an-address"),
                                         ("smtp://mail.example.com", "jörg@example.com")])
def test_a_wrong_mail_configuration_stops_the_start(url, sender):
    from app import create_app
    with pytest.raises(ValueError):
        create_app({"SMTP_URL": url, "MAIL_FROM": sender, "DATABASE_URL": "sqlite://", "SECRET_KEY": "t"})
    mail.configure("")


# ----- the panels ---------------------------------------------------------------------------------------
def _url(document, action=""):
    return f"/{document.record_type}s/{document.id}" + (f"/{action}" if action else "")


def test_the_quote_panel_emails_the_quote(logged_in, user, sink):
    with db.connection_context():
        company()
        quote = active_quote(User.get_by_id(user.id))
        contact_email = quote.contact.email
    html = logged_in.hx_get(_url(quote) + "?action=email").get_data(as_text=True)
    assert 'name="to"' in html and f'value="{contact_email}"' in html and "Send the email" in html
    assert re.search(r'name="copy_to_me" type="checkbox" value="1" checked', html)  # a copy to the seller, unless untick
    refused = logged_in.hx_post(_url(quote, "email"), {"to": "nobody", "subject": "Quote", "message": "Hi",
                                                        "version": "1"})
    assert refused.status_code == 422 and "Not an email address: nobody" in refused.get_data(as_text=True)
    assert 'name="copy_to_me" type="checkbox" value="1">' in refused.get_data(as_text=True)  # left unticked
    assert sink.messages == []
    resp = logged_in.hx_post(_url(quote, "email"), {"to": contact_email, "subject": "Your quote",
                                                     "message": "Dear Lena,\nhere it is.", "version": "1"})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    assert f"{quote.display_number} was emailed to {contact_email}." in resp.headers.get("HX-Trigger", "") + resp.get_data(as_text=True)
    assert len(sink.messages) == 1 and sink.parsed()["Subject"] == "Your quote"
    assert sink.messages[0][1] == [contact_email]  # the box was not ticked: no copy
    logged_in.hx_post(_url(quote, "email"), {"to": contact_email, "subject": "Again", "message": "Hi",
                                              "copy_to_me": "1", "version": "1"})
    assert [m[1] for m in sink.messages[1:]] == [[contact_email], ["sam@example.com"]]
    timeline = logged_in.hx_get(_url(quote)).get_data(as_text=True)
    assert "emailed the document" in timeline


def test_without_a_mail_server_the_button_says_why(logged_in, user):
    with db.connection_context():
        company()
        invoice = issued_invoice(User.get_by_id(user.id))
        before = world_counts()
    html = logged_in.hx_get(_url(invoice)).get_data(as_text=True)
    assert "Email the invoice" in html and "Email is not set up for this installation" in html
    resp = logged_in.hx_post(_url(invoice, "email"), {"to": "x@example.com", "subject": "Invoice",
                                                       "message": "Hi", "version": "1"})
    assert resp.status_code == 409 and "SMTP_URL" in resp.get_data(as_text=True)
    with db.connection_context():
        assert world_counts() == before


def test_a_seller_cannot_email_another_sellers_quote(app, client, user, sink):
    with db.connection_context():
        company()
        quote = active_quote(User.get_by_id(user.id))
        User.create_user("sue@example.com", "correct horse battery staple", "Sue Seller", "seller")
    client.login("sue@example.com", "correct horse battery staple")
    resp = client.hx_post(_url(quote, "email"), {"to": "x@example.com", "subject": "Quote", "message": "Hi",
                                                  "version": "1"})
    assert resp.status_code == 404 and sink.messages == []


def test_an_overdue_invoice_is_sent_again_as_a_payment_reminder(logged_in, user, sink):
    from models import Invoice
    from models.documents import _long_date
    from test_documents_pdf import customer_of
    from tests.builders import days_ago, make_draft_invoice
    with db.connection_context():
        company()
        seller = User.get_by_id(user.id)
        draft = make_draft_invoice(seller)
        customer_of(draft)
        fresh(draft).issue(seller, issue_date=days_ago(45).isoformat())
        invoice = Invoice.get_by_id(draft.id)
        assert invoice.payment_state == "overdue"
        form = _form(invoice, seller)
    assert form["subject"] == f"Payment reminder: invoice {invoice.number} – Falkenberg IT-Systeme GmbH"
    assert f"was due on {_long_date(invoice.due_date)}" in form["message"] and "disregard" in form["message"]
    html = logged_in.hx_get(_url(invoice)).get_data(as_text=True)
    assert "Send a payment reminder" in html and "Email the invoice" not in html
    resp = logged_in.hx_post(_url(invoice, "email"), dict(form, version="1"))
    assert resp.status_code == 200 and sink.parsed()["Subject"] == form["subject"]
    attachment, = sink.parsed().iter_attachments()
    with db.connection_context():
        assert attachment.get_content() == bytes(Invoice.get_by_id(invoice.id).pdf)
        again = _form(Invoice.get_by_id(invoice.id), seller)
    assert again["subject"].startswith(f"Second payment reminder: invoice {invoice.number}")
    html = logged_in.hx_get(_url(invoice)).get_data(as_text=True)
    assert "sent a payment reminder" in html and "1 sent, the last on" in html
    logged_in.hx_post(_url(invoice, "email"), dict(again, version="1"))
    with db.connection_context():
        third = _form(Invoice.get_by_id(invoice.id), seller)["subject"]
    assert third.startswith("Third payment reminder") and "2 sent, the last on" in logged_in.hx_get(
        _url(invoice)).get_data(as_text=True)
    listed = logged_in.get("/invoices?status=overdue").get_data(as_text=True)  # the list a dunning clerk works from
    assert f'data-record="invoice:{invoice.id}"' in listed and 'data-reminders="2"' in listed
    assert "2 reminders, last" in listed


def test_what_is_attached_is_the_stored_document_in_every_state(database, seller, sink):
    """A won quote and a paid invoice too; and the stored bytes even when a render now would differ."""
    from models import Invoice, Quote
    from models.documents import render_pdf
    from tests.builders import win_inputs
    company()
    quote = active_quote(seller)
    opportunity = quote.opportunity
    opportunity.move_to(seller, "fulfill", **win_inputs(opportunity))
    invoice = issued_invoice(seller)
    invoice.mark_paid(seller, paid_on=invoice.issue_date.isoformat())
    company(company_name="Falkenberg Systems AG")  # a render now would print the new name
    for document in (Quote.get_by_id(quote.id), Invoice.get_by_id(invoice.id)):
        assert document.status in ("won", "paid")
        assert render_pdf(document, draft=False) != bytes(document.pdf)
        mail.send_document(seller, document, _form(document, seller))
        attachment, = sink.parsed().iter_attachments()
        assert attachment.get_content() == bytes(document.pdf)


def test_idn_domains_and_a_server_that_says_goodbye_badly(database, seller, sink):
    company()
    quote = active_quote(seller)
    sink.goodbye = "421 closing"  # after the mail was accepted: it was sent, and is recorded
    sent, accepted, _ = mail.send_document(seller, quote, _form(quote, seller, to="info@bücher.example",
                                                                copy_to_me=False))
    assert accepted == ["info@xn--bcher-kva.example"] and sink.messages[0][1] == ["info@xn--bcher-kva.example"]
    assert len(_emails(quote)) == 1


def test_the_api_emails_a_document_with_the_panels_defaults(app, user, sink):
    import json
    from models import ApiToken
    with db.connection_context():
        company()
        seller = User.get_by_id(user.id)
        quote = active_quote(seller)
        contact_email = quote.contact.email
        token = ApiToken.issue(seller, "mail test")[1]
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    resp = client.post(f"/api/v1/quotes/{quote.id}/email", data=json.dumps({"cc": "boss@example.com",
                                                                            "copy_to_me": False}), headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["id"] == quote.id
    assert sink.messages[0][1] == [contact_email, "boss@example.com"]
    assert sink.parsed()["Subject"].startswith(f"Quote {quote.display_number}")
    with db.connection_context():
        invoice = _overdue_invoices(seller)[0]
    reminded = client.post(f"/api/v1/invoices/{invoice.id}/email", data="{}", headers=headers)
    assert reminded.status_code == 200 and reminded.get_json()["reminded_at"]  # an overdue one: a reminder
    assert sink.parsed()["Subject"].startswith(f"Payment reminder: invoice {invoice.number}")
    bad = client.post(f"/api/v1/quotes/{quote.id}/email", data=json.dumps({"to": "nobody"}), headers=headers)
    assert [m[1] for m in sink.messages[1:]] == [[invoice.contact.email], [seller.email]]  # {}: with the copy
    assert bad.status_code == 422 and "to" in bad.get_json()["fields"] and len(sink.messages) == 3


def test_the_company_writes_its_own_email_texts(database, seller, sink):
    from models import Settings
    from models.mail import BUILT_IN_TEXTS
    settings = company()
    manager = User.create_user("mia@example.com", "correct horse battery staple", "Mia Manager", "manager")
    german = ("Guten Tag {contact},\n\nanbei unser Angebot {number} über {total}, gültig bis {valid_until}.\n\n"
              "Mit freundlichen Grüßen\n{seller}, {company}")
    with pytest.raises(ValidationError) as refused:
        settings.save_changes(manager, {"email_quote_text": "Hello {customer_name}"})
    assert "Unknown placeholder {customer_name}" in refused.value.fields["email_quote_text"]
    with pytest.raises(ValidationError) as doubled:
        settings.save_changes(manager, {"email_quote_text": "Hello {{contact}}"})
    assert "single braces" in doubled.value.fields["email_quote_text"]
    settings.save_changes(manager, {"email_quote_text": german,
                                    "email_invoice_text": BUILT_IN_TEXTS["email_invoice_text"] + "\n"})
    stored = Settings.load()
    assert stored.email_quote_text == german and stored.email_invoice_text == ""  # unchanged: the built-in text
    quote = active_quote(seller)
    message = _form(quote, seller)["message"]
    assert message.startswith(f"Guten Tag {quote.contact.name},\n\nanbei unser Angebot {quote.display_number} über €")
    assert message.endswith("Mit freundlichen Grüßen\nSam Seller, Falkenberg IT-Systeme GmbH")
    invoice = issued_invoice(seller)
    assert "The PDF carries the e-invoice (Factur-X)" in _form(invoice, seller)["message"]
    settings.save_changes(manager, {"email_credit_text": "{greeting}\n\nGutschrift {number} storniert {invoice}."})
    fresh(invoice).cancel(seller, reason="Wrong address")
    canceled = fresh(invoice)
    assert _form(canceled, seller)["message"].endswith(
        f"Gutschrift {canceled.credit_note.number} storniert {invoice.number}.")


def test_the_settings_page_shows_and_saves_the_email_texts(app, client, user):
    from models import Settings
    with db.connection_context():
        User.create_user("mia@example.com", "correct horse battery staple", "Mia Manager", "manager")
    client.login("mia@example.com", "correct horse battery staple")
    page = client.get("/settings").get_data(as_text=True)
    assert 'name="email_reminder_text"' in page and "we have not received your payment yet" in page
    form = {"company_name": "Falkenberg IT-Systeme GmbH", "quote_validity_days": "30", "payment_terms_days": "30",
            "rot_days_develop": "14", "rot_days_propose": "10", "rot_days_close": "7",
            "email_reminder_text": "{greeting}\n\nbitte überweisen Sie {total} für {number}.\n\n{seller}",
            "email_quote_text": "Hi {nickname}"}
    refused = client.form_post("/settings", form)
    assert refused.status_code == 422 and "Unknown placeholder {nickname}" in refused.get_data(as_text=True)
    with db.connection_context():
        assert Settings.load().email_reminder_text == ""  # nothing saved
    form["email_quote_text"] = ""
    saved = client.form_post("/settings", form)
    assert saved.status_code == 302
    with db.connection_context():
        assert Settings.load().email_reminder_text.startswith("{greeting}\n\nbitte überweisen Sie")
    del form["email_reminder_text"]  # a form without the field (an older page) keeps the text
    form["company_name"] = "Falkenberg IT GmbH"
    assert client.form_post("/settings", form).status_code == 302
    with db.connection_context():
        assert Settings.load().email_reminder_text.startswith("{greeting}\n\nbitte überweisen Sie")


def _overdue_invoices(*owners):
    from models import Invoice
    from test_documents_pdf import customer_of
    from tests.builders import days_ago, make_draft_invoice
    invoices = []
    for owner in owners:
        draft = make_draft_invoice(owner)
        customer_of(draft)
        fresh(draft).issue(owner, issue_date=days_ago(45).isoformat())
        invoices.append(Invoice.get_by_id(draft.id))
    return invoices


def _outcomes(html):
    """{invoice number: outcome} of a reminder run's report."""
    return {number: outcome for outcome, number in re.findall(r'data-outcome="([^"]+)"><a[^>]*>(INV-[\d-]+)</a>', html)}


def test_a_reminder_run_from_the_overdue_list(logged_in, user, sink):
    """One click reminds every overdue invoice the seller may change: not one reminded in the last week, not one
    whose customer has no address, never another seller's; when the mail server fails the rest wait."""
    from models import Contact, Invoice
    with db.connection_context():
        company()
        seller = User.get_by_id(user.id)
        other = User.create_user("sue@example.com", "correct horse battery staple", "Sue Seller", "seller")
        due, reminded, silent, paid, others = _overdue_invoices(seller, seller, seller, seller, other)
        mail.send_document(seller, reminded, _form(reminded, seller))  # reminded from its panel just now
        Contact.update(email="").where(Contact.id == silent.contact_id).execute()
        Invoice.get_by_id(paid.id).mark_paid(seller)
        sink.messages.clear()
    page = logged_in.get("/invoices?status=overdue").get_data(as_text=True)
    assert "Send payment reminders" in page and 'action="/invoices/reminders"' in page
    resp = logged_in.hx_post("/invoices/reminders", {})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "1 of 2 reminders sent." in html
    outcomes = _outcomes(html)
    assert outcomes == {due.number: "sent", silent.number: "skipped"}  # (the one reminded this week is left out)
    assert "has no email address" in html and others.number not in outcomes
    assert len(sink.messages) == 1 and sink.parsed()["Subject"].startswith(f"Payment reminder: invoice {due.number}")
    with db.connection_context():
        assert len(mail.reminders(due)) == 1 and mail.reminders(others) == []
        assert Invoice.get_by_id(due.id).reminded_at is not None
    exported = logged_in.get("/invoices/export.csv?status=overdue").get_data(as_text=True).splitlines()
    header = exported[0].split(",")
    by_number = {row.split(",")[0]: row.split(",") for row in exported[1:]}
    assert by_number[due.number][header.index("Last reminder")].startswith(today().isoformat())
    assert by_number[silent.number][header.index("Last reminder")] == ""
    with db.connection_context():
        Contact.update(email="ana@example.com").where(Contact.id == silent.contact_id).execute()
        Invoice.update(reminded_at=None).execute()  # as if a week had passed
    with SmtpSink() as closed:
        port = closed.port
    mail.configure(f"smtp://127.0.0.1:{port}?tls=none")
    html = logged_in.hx_post("/invoices/reminders", {}).get_data(as_text=True)
    assert "0 of 3 reminders sent." in html and html.count('data-outcome="failed"') == 1
    assert html.count('data-outcome="not tried"') == 2 and "the mail server failed" in html
    with db.connection_context():  # a reminder not sent is not counted as one
        assert Invoice.select().where(Invoice.reminded_at.is_null(False)).count() == 0
    mail.configure("")
    refused = logged_in.hx_post("/invoices/reminders", {})
    assert refused.status_code == 409 and "SMTP_URL" in refused.get_data(as_text=True)


def test_a_reminder_run_goes_on_past_one_refused_mail_and_stops_at_its_limit(logged_in, user, sink, monkeypatch):
    from models import Invoice, Team
    with db.connection_context():
        company()
        seller = User.get_by_id(user.id)
        team = Team.create(name="North")
        User.update(team=team.id).where(User.id == seller.id).execute()
        mate = User.create_user("tim@example.com", "correct horse battery staple", "Tim Teammate", "seller",
                                team=team)
        first, second, third, teammates = _overdue_invoices(seller, seller, seller, mate)
        sink.reject_data = {first.contact.email}  # this customer's server refuses the message (552)
    monkeypatch.setattr(mail, "REMINDER_RUN_LIMIT", 2)
    html = logged_in.hx_post("/invoices/reminders", {}).get_data(as_text=True)
    outcomes = _outcomes(html)
    assert outcomes == {first.number: "failed", second.number: "sent", third.number: "not tried"}
    assert "552" in html and "run it again for the rest" in html
    assert teammates.number in html and teammates.number not in outcomes  # a teammate's: listed, not reminded
    with db.connection_context():
        Invoice.update(reminded_at=None).execute()
    sink.reject_data, sink.delay = set(), 0.3  # a slow server: no new mail after the run's time is up
    monkeypatch.setattr(mail, "REMINDER_RUN_SECONDS", 0.2)
    html = logged_in.hx_post("/invoices/reminders", {}).get_data(as_text=True)
    assert html.count('data-outcome="sent"') == 1 and html.count('data-outcome="not tried"') == 2
    assert "the mail server is slow" in html
    sink.delay = 0
    plain = logged_in.form_post("/invoices/reminders", {})  # without htmx: the outcome as a message, then the list
    assert plain.status_code == 303 and plain.headers["Location"].endswith("/invoices?status=overdue")
