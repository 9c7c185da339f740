"""Emailing a frozen document to the customer: a sent quote, an issued invoice, a canceled invoice's credit
note. The PDF attached is the stored one (the bytes a download serves). The mail goes out through the SMTP
server of the installation's SMTP_URL before anything is written; once it is accepted, the document's
history and the deal's timeline record who sent what to whom."""
import datetime
import email.policy
import re
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from urllib.parse import parse_qs, unquote, urlparse

from .base import now, today, write_transaction
from .errors import DomainError, NotAllowed
from .validation import EMAIL_RE, Cleaner, text_problem

MAX_RECIPIENTS = 10  # in To and in Cc each
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SMTP_TIMEOUT = 20  # seconds: a mail server that does not answer is reported, not waited for
_config = {"url": "", "sender": ""}


class MailNotSent(DomainError):
    """The mail server could not be reached or refused the mail (nothing was recorded). `server_down`: it
    failed before this mail's own turn (connection, TLS, login), so another mail would fail the same way."""

    status = 503

    def __init__(self, message, fields=None, server_down=False):
        super().__init__(message, fields)
        self.server_down = server_down


def configure(smtp_url, sender=""):
    """The SMTP server (`smtp://user:password@host:587`, `smtps://…:465`; `?tls=none` for a relay on the
    same machine that offers no TLS) and the From address (default: the company's email in the settings).
    Problems are raised at start-up (ValueError), not when a seller first sends a mail."""
    smtp_url, sender = (smtp_url or "").strip(), (sender or "").strip()
    if smtp_url:
        _server(smtp_url)
    if sender and (not EMAIL_RE.match(sender) or _ascii_address(sender) is None):
        raise ValueError(f"MAIL_FROM: {sender!r} is not an email address with ASCII letters before the @")
    _config.update(url=smtp_url, sender=sender)


def configured():
    return bool(_config["url"])


def not_configured_reason():
    return None if configured() else ("Email is not set up for this installation: an admin sets SMTP_URL "
                                      "(see the README, Configuration).")


def _sender(settings):
    return _config["sender"] or settings.email


def unavailable_reason(settings):
    """Why no document can be emailed now (None when one can): no mail server, or no address to send from."""
    if not configured():
        return not_configured_reason()
    if not _sender(settings):
        return "There is no address to send from: enter the company's email in the settings, or set MAIL_FROM."
    return None


def _server(url):
    """(scheme, host, port, user, password, tls) of an SMTP_URL."""
    parts = urlparse(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:password@mail.example.com:587 or smtps://…:465")
    tls = parse_qs(parts.query).get("tls", ["auto"])[-1]
    if tls not in ("auto", "none"):
        raise ValueError("SMTP_URL: tls may only be 'none' (a local relay without TLS)")
    try:
        port = parts.port
        host = parts.hostname.encode("idna").decode("ascii")
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"SMTP_URL: {exc}") from None
    if port == 0:
        raise ValueError("SMTP_URL: the port cannot be 0")
    port = port or (465 if parts.scheme == "smtps" else 587)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not (user + password).isascii():
        raise ValueError("SMTP_URL: SMTP logins take user names and passwords in ASCII characters only")
    if tls == "none" and user and host not in LOCAL_HOSTS:
        raise ValueError("SMTP_URL: ?tls=none would send the password unencrypted; it is only for a relay on this "
                         "machine (localhost)")
    return parts.scheme, host, port, user, password, tls


def _ascii_address(address):
    """The address as SMTP and mail headers take it without SMTPUTF8 (the domain in IDNA form), or None when
    its part before the @ has other than ASCII characters."""
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        return None
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return None


# ----- what is sent -----------------------------------------------------------------------------------
def mail_kind(document):
    """What a mail about `document` is, or None when none can be sent: "quote" (a sent or won one), "invoice"
    (issued or paid), "reminder" (issued and overdue: a payment reminder), "credit_note" (a canceled invoice's)."""
    if document.record_type == "quote":
        return "quote" if document.status in ("active", "won") else None
    if document.status in ("issued", "paid"):
        return "reminder" if document.payment_state == "overdue" else "invoice"
    if document.status == "canceled" and document.credit_note is not None:
        return "credit_note"
    return None


def mailable(document):
    """The frozen document a mail about `document` carries (the credit note of a canceled invoice), or
    NotAllowed (NotFound for a canceled invoice without a credit note) saying why there is none."""
    if document.record_type == "invoice" and document.status == "canceled" and document.number:
        from .invoice import CreditNote
        return CreditNote.of(document)
    if mail_kind(document):
        return document
    if document.record_type == "quote":
        raise NotAllowed(f"Quote {document.display_number} is {document.status}: only a sent (active) or won "
                         "quote is emailed, as the customer received it.")
    raise NotAllowed(f"Invoice {document.display_number} is a draft: issue it first (a draft has no number).")


def reminders(invoice):
    """The payment reminders sent for an invoice (history events), oldest first."""
    from .history import HistoryEvent
    return list(HistoryEvent.select(HistoryEvent.at).where(
        (HistoryEvent.record_type == "invoice") & (HistoryEvent.record_id == invoice.id)
        & (HistoryEvent.action == "reminder")).order_by(HistoryEvent.at, HistoryEvent.id))


def reminder_counts(invoice_ids):
    """{invoice id: payment reminders sent} for a page of invoices (one query; when the last one went is the
    invoice's reminded_at)."""
    from peewee import fn
    from .history import HistoryEvent
    if not invoice_ids:
        return {}
    return dict(HistoryEvent.select(HistoryEvent.record_id, fn.COUNT(HistoryEvent.id))
                .where((HistoryEvent.record_type == "invoice") & (HistoryEvent.action == "reminder")
                       & HistoryEvent.record_id.in_(list(invoice_ids)))
                .group_by(HistoryEvent.record_id).tuples())


def _recipient(document):
    """The customer's address: the document's contact, else its account."""
    for party in (document.contact if document.contact_id else None,
                  document.account if document.account_id else None):
        if party is not None and party.email:
            return party.email
    return ""


# The messages' texts: built in, or the company's own from the settings (one per kind, with placeholders).
_CLOSING = "\n\nKind regards,\n{seller}\n{company}"
BUILT_IN_TEXTS = {
    "email_quote_text": "{greeting}\n\nplease find attached our quote {number} for {deal}, {total} in total, valid "
                        "until {valid_until}." + _CLOSING,
    "email_invoice_text": "{greeting}\n\nplease find attached our invoice {number} of {issue_date}: {total}, payable "
                          "by {due_date}. The PDF carries the e-invoice (Factur-X) for your accounts." + _CLOSING,
    "email_reminder_text": "{greeting}\n\nour invoice {number} of {issue_date} for {total} was due on {due_date}, and "
                           "we have not received your payment yet. Please transfer the amount, quoting {number}; the "
                           "invoice is attached again. If you have paid in the meantime, please disregard this "
                           "email." + _CLOSING,
    "email_credit_text": "{greeting}\n\nplease find attached our credit note {number}: it voids invoice {invoice} of "
                         "{issue_date}, which is not to be paid." + _CLOSING,
}
PLACEHOLDERS = {
    "greeting": "“Dear” and the contact's name, or “Dear Sir or Madam”", "contact": "the contact's name",
    "customer": "the customer (account or contact)", "number": "the document's number", "deal": "the deal's topic",
    "total": "the total with currency", "valid_until": "the quote's validity", "issue_date": "the invoice date",
    "invoice": "the invoice's number (the one a credit note voids)",
    "due_date": "the invoice's due date", "seller": "the name of the seller who sends it",
    "company": "the company name"}
EMAIL_TEXT_OF = {"quote": "email_quote_text", "invoice": "email_invoice_text", "reminder": "email_reminder_text",
                 "credit_note": "email_credit_text"}  # the settings text of each kind of mail
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def text_template_problem(text):
    """Why a settings email text cannot be used (None when it can): a {name} that is not a placeholder."""
    if "{{" in text or "}}" in text:
        return "Write a placeholder in single braces, such as {number} (not {{number}})."
    unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})
    if unknown:
        return (f"Unknown placeholder {{{unknown[0]}}}: use "
                + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS) + ".")
    return None


def email_text(settings, name):
    """The settings' text of this kind of email, or the built-in one when the company has none."""
    return (getattr(settings, name, "") or "").strip() or BUILT_IN_TEXTS[name]


def _fill(template, values):
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), template)


def compose(document, actor):
    """The form's defaults: {to, cc, subject, message} for mailing `document` (a quote or an invoice)."""
    from .documents import _long_date, customer_party
    from .money import format_money
    from .settings import Settings
    settings = Settings.load(logo=False)
    sent, kind = mailable(document), mail_kind(document)
    party = customer_party(document)
    contact = (party["attention"] or (party["name"] if party["kind"] == "contact" else "")) if party else ""
    company = settings.company_name
    topic = document.opportunity.topic if document.opportunity_id else ""
    values = {"greeting": f"Dear {contact}," if contact else "Dear Sir or Madam,", "contact": contact,
              "customer": party["name"] if party else "", "number": sent.display_number, "deal": topic,
              "total": format_money(document.gross_total, settings.currency), "seller": actor.name,
              "company": company, "valid_until": _long_date(getattr(document, "valid_until", None)),
              "issue_date": _long_date(getattr(document, "issue_date", None)),
              "invoice": document.number if document.record_type == "invoice" else "",
              "due_date": _long_date(getattr(document, "due_date", None))}
    if kind == "quote":
        subject = f"Quote {sent.display_number}" + (f": {topic}" if topic else "")
    elif kind == "reminder":  # a friendly payment reminder (the second one says so)
        earlier = reminder_counts([document.id]).get(document.id, 0)
        which = ("Payment reminder", "Second payment reminder", "Third payment reminder")
        subject = (which[earlier] if earlier < len(which) else f"Payment reminder no. {earlier + 1}") + \
            f": invoice {sent.number}"
    elif kind == "invoice":
        subject = f"Invoice {sent.number}" + (f": {topic}" if topic else "")
    else:
        subject = f"Credit note {sent.number} for invoice {document.number}"
    message = _fill(email_text(settings, EMAIL_TEXT_OF[kind]), values)
    subject = f"{subject} – {company}" if company else subject
    return {"to": _recipient(document), "cc": "", "subject": subject[:200], "message": message.strip()[:10000],
            "copy_to_me": True}


def _addresses(c, name, raw, required):
    """A comma- or semicolon-separated list of addresses, each checked."""
    items = [part.strip() for part in (raw or "").replace(";", ",").split(",") if part.strip()]
    if not items:
        if required:
            c.fail(name, "Enter the customer's email address.")
        return []
    wrong = [item for item in items if len(item) > 254 or not EMAIL_RE.match(item) or text_problem(item)]
    if wrong:
        c.fail(name, f"Not an email address: {wrong[0]} (separate several with commas).")
        return []
    if len(items) > MAX_RECIPIENTS:
        c.fail(name, f"At most {MAX_RECIPIENTS} addresses.")
        return []
    sendable = [_ascii_address(item) for item in items]
    if None in sendable:
        c.fail(name, f"{items[sendable.index(None)]}: only addresses with ASCII letters before the @ can be sent to.")
    return sendable


def _clean(data):
    c = Cleaner(data, complete=True)
    to = _addresses(c, "to", data.get("to"), True)
    cc = _addresses(c, "cc", data.get("cc"), False)
    c.text("subject", 200, required=True)
    c.text("message", 10000, required=True, multiline=True)
    c.boolean("copy_to_me")
    if "subject" not in c.errors and len((data.get("subject") or "").strip().splitlines()) > 1:
        c.fail("subject", "Use a single line (no line breaks).")  # U+2028 and the like: a header is one line
    values = c.raise_if_errors("The email could not be sent.")
    return dict(values, to=to, cc=cc)


def build_message(actor, sent, values, settings):
    """The email: From the company (MAIL_FROM or the settings' email) in the seller's name, Reply-To the
    seller, the text, and the stored PDF attached."""
    sender = _sender(settings)
    if not sender:
        raise NotAllowed(unavailable_reason(settings), {"settings.email": "Enter the company's email address."})
    sender = _ascii_address(sender)
    if sender is None:
        raise NotAllowed("The company's email cannot be sent from: use an address with ASCII letters before "
                         "the @, or set MAIL_FROM.", {"settings.email": "Use ASCII letters before the @."})
    mail = EmailMessage()
    name = f"{actor.name} – {settings.company_name}" if settings.company_name else actor.name
    mail["From"] = formataddr((name, sender))
    mail["To"] = ", ".join(values["to"])
    if values["cc"]:
        mail["Cc"] = ", ".join(values["cc"])
    reply_to = _ascii_address(actor.email) if actor.email else None
    if reply_to and reply_to != sender:  # (a login that cannot be written in a header gets no Reply-To)
        mail["Reply-To"] = formataddr((actor.name, reply_to))
    mail["Subject"] = values["subject"]
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[1])
    mail.set_content(values["message"])
    mail.add_attachment(bytes(sent.pdf), maintype="application", subtype="pdf", filename=sent.file_name)
    return mail


def _deliver(mail, recipients, copy=None):
    """Hand the mail to the SMTP server; MailNotSent with the reason when it cannot be delivered. `copy`: an
    address that gets it too, as a second message once the recipients' was accepted (never alone)."""
    scheme, host, port, user, password, tls = _server(_config["url"])
    context = ssl.create_default_context()
    server, sending = None, False
    try:
        if scheme == "smtps":
            server = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
        else:
            server = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
        server.ehlo()
        if scheme == "smtp" and tls != "none":
            if not server.has_extn("starttls"):
                raise MailNotSent(f"The mail server {host} offers no encryption (STARTTLS): the mail was not "
                                  "sent. Use smtps:// or a server with STARTTLS (?tls=none only for a relay "
                                  "on this machine).", server_down=True)
            server.starttls(context=context)
            server.ehlo()
        if user:
            server.login(user, password)
        sending = True  # from here on a refusal is about this mail (its size, sender or recipients)
        data = mail.as_bytes(policy=email.policy.SMTP)  # flattened once: the copy is the same bytes
        sender = parseaddr(str(mail["From"]))[1]
        refused = server.sendmail(sender, recipients, data)
        if copy:
            try:
                server.sendmail(sender, [copy], data)
            except smtplib.SMTPException:  # the customer has it: a lost copy is no reason to say otherwise
                pass
    except MailNotSent:
        _close(server)
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        _close(server)
        raise MailNotSent("The mail server refused every recipient: the mail was not sent.",
                          {"to": "Refused by the mail server: " + ", ".join(exc.recipients)}) from None
    except smtplib.SMTPAuthenticationError:
        _close(server)
        raise MailNotSent("The mail server did not accept SMTP_URL's user name and password: the mail was not "
                          "sent.", server_down=True) from None
    except (smtplib.SMTPException, OSError, socket.timeout, ssl.SSLError, UnicodeError) as exc:
        _close(server)
        raise MailNotSent(f"The mail server {host}:{port} could not be reached or refused the mail "
                          f"({type(exc).__name__}: {str(exc)[:200]}); it was not sent. Try again later.",
                          server_down=not sending) from None
    _close(server)  # the mail was accepted: how the server says goodbye changes nothing
    return refused


def _close(server):
    if server is None:
        return
    try:
        server.quit()
    except (smtplib.SMTPException, OSError):
        server.close()


def send_document(actor, document, data):
    """Email `document`'s frozen PDF (see `mailable`) as the form `data` says (to, cc, subject, message).
    The mail is sent first, with no transaction open; once the server accepted it, one history event on
    `document` and an email activity on its deal record it. Returns (the document attached, the addresses
    the server accepted, those it refused while accepting others)."""
    from .activity import Activity
    from .history import HistoryEvent
    from .opportunity import Opportunity
    from .settings import Settings
    if not configured():
        raise NotAllowed(not_configured_reason())
    values = _clean(data)
    sent = mailable(document)
    if sent.pdf is None:  # loaded without its bytes
        sent = type(sent).get_by_id(sent.id)
    if not sent.pdf or not sent.pdf_sha256:
        raise NotAllowed(f"{sent.display_number} has no stored PDF yet: run `flask --app app freeze-documents`.")
    settings = Settings.load(logo=False)
    mail = build_message(actor, sent, values, settings)
    recipients = values["to"] + values["cc"]
    copy = _ascii_address(actor.email) if values.get("copy_to_me") and actor.email else None
    if copy and copy.lower() in {address.lower() for address in recipients}:
        copy = None  # the seller is a recipient already
    # the seller's copy is a blind one: in no header, sent once the customer's mail was accepted
    refused = _deliver(mail, recipients, copy)
    accepted = [address for address in recipients if address not in refused]
    reminder = mail_kind(document) == "reminder"
    with write_transaction():
        if reminder:
            type(document).update(reminded_at=now()).where(type(document).id == document.id).execute()
        HistoryEvent.write(actor, document, "reminder" if reminder else "email",
                           note=f"{sent.file_name} to {', '.join(accepted)}: {values['subject']}"[:1000])
        if document.opportunity_id:
            Activity.add(actor, Opportunity.get_by_id(document.opportunity_id), kind="email", done=True,
                         subject=values["subject"],
                         body=f"To: {', '.join(accepted)}\nAttached: {sent.file_name}\n\n{values['message']}")
    return sent, accepted, sorted(refused)


# ----- a reminder run -----------------------------------------------------------------------------------------
REMINDER_PAUSE_DAYS = 7   # an invoice reminded less than a week ago is left alone
REMINDER_RUN_LIMIT = 10   # mails per run: each is one SMTP conversation within the request (a worker's timeout)
REMINDER_RUN_SECONDS = 15  # no new mail is started after this long (gunicorn's workers time out after 30 s)


def overdue_for_reminders(query):
    """The overdue issued invoices of `query` (already limited to what the user may change) not reminded in the
    last REMINDER_PAUSE_DAYS, the longest overdue first."""
    from .invoice import Invoice
    pause = now() - datetime.timedelta(days=REMINDER_PAUSE_DAYS)
    return list(query.where((Invoice.status == "issued") & (Invoice.due_date < today())
                            & (Invoice.reminded_at.is_null() | (Invoice.reminded_at < pause)))
                .order_by(Invoice.due_date, Invoice.id))


def _claim(invoice):
    """Mark the invoice as being reminded now, unless another run or a seller did within the pause (an atomic
    UPDATE: two runs at once never send the same reminder twice). Returns the previous mark, or False."""
    from .invoice import Invoice
    pause = now() - datetime.timedelta(days=REMINDER_PAUSE_DAYS)
    previous = Invoice.select(Invoice.reminded_at).where(Invoice.id == invoice.id).scalar()
    claimed = Invoice.update(reminded_at=now()).where(
        (Invoice.id == invoice.id) & (Invoice.reminded_at.is_null() | (Invoice.reminded_at < pause))).execute()
    return previous if claimed else False


def send_reminders(actor, invoices):
    """Email each overdue invoice its payment reminder, with the text its panel would offer, up to
    REMINDER_RUN_LIMIT mails. Returns [(invoice, outcome, detail)] with outcome sent / skipped / failed /
    not tried: one without a customer address, or reminded meanwhile, is skipped; when the mail server itself
    fails (connection, TLS, login), or the run's mails or REMINDER_RUN_SECONDS are used up, the rest are not
    tried."""
    from .invoice import Invoice
    from .settings import Settings
    reason = unavailable_reason(Settings.load(logo=False))
    if reason:
        raise NotAllowed(reason)
    results, stopped, tried, started = [], None, 0, time.monotonic()
    for invoice in invoices:
        if stopped is None and tried >= REMINDER_RUN_LIMIT:
            stopped = f"at most {REMINDER_RUN_LIMIT} reminders a run: run it again for the rest"
        elif stopped is None and tried and time.monotonic() - started > REMINDER_RUN_SECONDS:
            stopped = f"the mail server is slow: after {REMINDER_RUN_SECONDS} s, run it again for the rest"
        if stopped:
            results.append((invoice, "not tried", stopped))
            continue
        values = dict(compose(invoice, actor), copy_to_me=False)  # (a run would fill the seller's mailbox)
        if not values["to"]:
            results.append((invoice, "skipped", "the customer has no email address"))
            continue
        with write_transaction():
            previous = _claim(invoice)
        if previous is False:
            results.append((invoice, "skipped", "reminded meanwhile"))
            continue
        tried += 1
        try:
            _, accepted, refused = send_document(actor, invoice, values)
        except DomainError as exc:
            with write_transaction():  # not sent: the claim is given back
                Invoice.update(reminded_at=previous).where(Invoice.id == invoice.id).execute()
            results.append((invoice, "failed", str(exc)))
            if getattr(exc, "server_down", False):  # the others would wait for it and fail the same way
                stopped = "the mail server failed"
            continue
        results.append((invoice, "sent", ", ".join(accepted)))
    return results
