"""The JSON API under /api/v1: token-authenticated, with the reach and the model methods of the web UI.

One description of the resources (RESOURCES: fields, filters, actions) makes the routes, the JSON of
each record, the checks of the input's JSON types and the OpenAPI document (/api/v1/openapi.json).
Every request authenticates on its own (`Authorization: Bearer <token>`, no cookies); records named in
the URL are loaded through the access rule (load_url_records), lists through in_reach; every change is a
model method, the same the board and the panels call. Errors are {"error": …, "fields": {…}}.
"""
import datetime
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, request
from werkzeug.exceptions import HTTPException, default_exceptions

from models import (Account, ApiToken, Contact, CreditNote, DomainError, Invoice, Lead, NotFound, Opportunity, Order,
                    Product, Quote, RuleNotMet, StaleVersion, User)
from models.validation import text_problem
from models.catalog import SUPPLY_KEYS, UNITS
from models.lead import DISQUALIFY_REASONS, RATINGS, SOURCES, STATUSES as LEAD_STATUSES, TIMEFRAMES
from models.opportunity import COLUMN_LABELS, COLUMNS, LOST_REASONS, REVENUE_MODES, STAGES

from .common import csrf, in_reach, load_record, load_url_records, url_record
from .documents import pdf_response, xml_response

bp = Blueprint("api", __name__, url_prefix="/api/v1")
PREFIX = "/api/v1"
PUBLIC = {"api.openapi"}
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_ID = 2 ** 31 - 1
JSON_TYPES = ("application/json",)


@bp.record_once
def _exempt_from_csrf(state):
    csrf.exempt_blueprint(bp.name)


# ----- the description ------------------------------------------------------------------------------
@dataclass
class F:
    """One field of a resource's JSON (or of an action's input)."""

    name: str
    kind: str = "string"   # string text integer boolean money percent quantity date datetime enum ref
    max_length: int = None
    choices: tuple = ()
    ref: str = None        # the resource (or "users") whose id a ref names
    nullable: bool = False
    create: bool = False   # accepted when the record is created
    update: bool = False   # accepted by PATCH
    required: bool = False
    minimum: int = None
    maximum: int = None
    new_ok: bool = False   # a ref that may also be "new" (qualify: create instead of linking a duplicate)
    doc: str = ""
    read: Callable = None  # how the value is read from a record (default: the attribute, <name>_id for refs)

    def value(self, record):
        if self.read is not None:
            return self.read(record)
        if self.kind == "ref":
            return getattr(record, f"{self.name}_id")
        return getattr(record, self.name)


@dataclass
class Filter:
    """A query parameter of a list: text search, a choice, an owner, a linked record, a yes/no."""

    name: str
    kind: str
    columns: tuple
    choices: tuple = ()
    doc: str = ""


@dataclass
class Action:
    """A business step on one record (POST /<resource>/<id>/<name>), done by one model method."""

    name: str
    summary: str
    run: Callable          # (record, actor, expected_version, inputs) -> the record to answer with
    inputs: list = field(default_factory=list)
    returns: str = None    # the resource of the answer (default: the same)
    status: int = 200


@dataclass
class Download:
    """A file of one record (GET /<resource>/<id>/<path>): its PDF, or its e-invoice XML."""

    path: str
    summary: str
    media_type: str
    answer: Callable       # (record) -> the Flask response


@dataclass
class Resource:
    name: str
    model: type
    arg: str
    title: str
    fields: list
    filters: list = field(default_factory=list)
    create: Callable = None
    create_fields: list = None
    actions: list = field(default_factory=list)
    lines: bool = False
    line_edit: bool = False  # PATCH / DELETE /<resource>/<id>/lines/<line_id> (and POST .../lines as an action)
    without: tuple = ()    # columns never loaded for lists (stored PDFs)
    downloads: list = field(default_factory=list)
    prefetch: Callable = None  # (rows of a list page) -> what their fields read, loaded for all rows at once
    doc: str = ""

    @property
    def singular(self):
        return self.title.lower()

    def writable(self, mode):
        if mode == "create":
            return self.create_fields if self.create_fields is not None else [f for f in self.fields if f.create]
        return [f for f in self.fields if f.update]


def _ro(name, kind="string", **kw):
    return F(name, kind, **kw)


def _rw(name, kind="string", create=True, **kw):
    return F(name, kind, create=create, update=True, **kw)


TIMESTAMPS = [_ro("created_at", "datetime"), _ro("updated_at", "datetime")]
TOTALS = [_ro("net_total", "money"), _ro("tax_total", "money"), _ro("gross_total", "money")]
POSTAL = [_rw("street", max_length=200), _rw("postal_code", max_length=20), _rw("city", max_length=100),
          _rw("country", max_length=2, doc="Two-letter country code (ISO 3166), e.g. DE.")]
OWNER = _rw("owner", "ref", ref="users", nullable=True,
            doc="The owning user's id. Sellers take unowned records; managers reassign within their team.")

LEAD_FIELDS = [
    _rw("name", max_length=200, required=True), _rw("company", max_length=200), _rw("private_buyer", "boolean"),
    _rw("job_title", max_length=120), _rw("email", max_length=254), _rw("phone", max_length=40),
    _rw("source", "enum", choices=SOURCES), _rw("topic", max_length=200), _rw("budget_amount", "money", nullable=True),
    _rw("purchase_timeframe", "enum", choices=TIMEFRAMES, nullable=True), _rw("decision_maker_known", "boolean"),
    _rw("rating", "enum", choices=RATINGS), _rw("notes", "text", max_length=20000), OWNER,
    _ro("status", "enum", choices=LEAD_STATUSES),
    _ro("disqualify_reason", "enum", choices=DISQUALIFY_REASONS, nullable=True), _ro("disqualify_note", "text"),
    _ro("column", "enum", choices=("qualify", "lost"), nullable=True, doc="The board column (null once qualified)."),
    _ro("closed_at", "datetime", nullable=True), *TIMESTAMPS,
]
QUALIFY_CHOICES = [
    F("account", "ref", ref="accounts", nullable=True, new_ok=True,
      doc='An existing account to link (its id), or "new" to create one even though a duplicate was found.'),
    F("contact", "ref", ref="contacts", nullable=True, new_ok=True,
      doc='An existing contact to link (its id), or "new" to create one even though a duplicate was found.'),
]
LEAD_INPUTS = [F(f.name, f.kind, f.max_length, f.choices, nullable=f.nullable, doc=f.doc)
               for f in LEAD_FIELDS if f.name in ("name", "company", "private_buyer", "job_title", "email", "phone",
                                                  "topic", "budget_amount", "purchase_timeframe",
                                                  "decision_maker_known")]

ACCOUNT_FIELDS = [
    _rw("name", max_length=200, required=True), _rw("vat_id", max_length=40), _rw("email", max_length=254),
    _rw("phone", max_length=40), _rw("website", max_length=200), *POSTAL,
    F("owner", "ref", ref="users", nullable=True, update=True, doc=OWNER.doc + " New records belong to their creator."),
    *TIMESTAMPS,
]
CONTACT_FIELDS = [
    _rw("name", max_length=200, required=True), _rw("job_title", max_length=120), _rw("email", max_length=254),
    _rw("phone", max_length=40), _rw("account", "ref", ref="accounts", nullable=True), *POSTAL,
    _rw("notes", "text", max_length=5000),
    F("owner", "ref", ref="users", nullable=True, update=True, doc=OWNER.doc + " New records belong to their creator."),
    *TIMESTAMPS,
]
OPPORTUNITY_FIELDS = [
    _rw("topic", max_length=200, create=False), _rw("account", "ref", ref="accounts", nullable=True, create=False),
    _rw("contact", "ref", ref="contacts", nullable=True, create=False), _ro("lead", "ref", ref="leads", nullable=True),
    _ro("stage", "enum", choices=STAGES), _ro("status", "enum", choices=("open", "won", "lost")),
    _ro("column", "enum", choices=COLUMNS, nullable=True, doc="The board column the deal's card is in."),
    _rw("probability", "integer", minimum=0, maximum=100, create=False),
    _rw("revenue_mode", "enum", choices=REVENUE_MODES, create=False),
    _rw("estimated_revenue", "money", create=False), _rw("estimated_close_date", "date", nullable=True, create=False),
    _rw("actual_revenue", "money", nullable=True, create=False),
    _rw("actual_close_date", "date", nullable=True, create=False),
    _ro("close_reason", "enum", choices=LOST_REASONS, nullable=True), _rw("competitor", max_length=200, create=False),
    _ro("close_note", "text"), _rw("description", "text", max_length=20000, create=False),
    F("owner", "ref", ref="users", nullable=True, update=True, doc=OWNER.doc), *TOTALS,
    _ro("stage_entered_at", "datetime"), *TIMESTAMPS,
]
EXEMPTION_DOC = ("The legal ground of a 0 % item's exemption from VAT (EN 16931 category E), printed on documents; "
                 "empty when the item is not exempt. A tax rate above 0 % ends it.")
SUPPLY_DOC = ("goods or services: at 0 % to a business in another EU country, goods are an intra-Community supply "
              "(category K) and services reverse charged (AE). Default: services.")
PRODUCT_FIELDS = [
    _rw("sku", max_length=40, required=True), _rw("name", max_length=200, required=True),
    _rw("description", "text", max_length=5000), _rw("unit", "enum", choices=UNITS, doc="Default: piece."),
    _rw("list_price", "money", doc="Default: 0.00."), _rw("tax_rate", "percent", doc="Default: 19.00."),
    _rw("tax_exemption", max_length=200, doc=EXEMPTION_DOC), _rw("supply", "enum", choices=SUPPLY_KEYS, doc=SUPPLY_DOC),
    _rw("active", "boolean"),
    *TIMESTAMPS,
]
QUOTE_FIELDS = [
    _ro("number", "integer"), _ro("revision", "integer"), _ro("display_number"),
    _ro("opportunity", "ref", ref="opportunities"), _ro("account", "ref", ref="accounts", nullable=True),
    _ro("contact", "ref", ref="contacts", nullable=True),
    _ro("status", "enum", choices=("draft", "active", "won", "lost", "revised")),
    F("valid_until", "date", nullable=True, update=True, doc="Editable while the quote is a draft."),
    F("payment_terms", "text", max_length=2000, update=True, doc="Editable while the quote is a draft."),
    F("notes", "text", max_length=5000, update=True, doc="Editable while the quote is a draft."),
    _ro("activated_at", "datetime", nullable=True), _ro("closed_at", "datetime", nullable=True), *TOTALS,
    _ro("pdf_sha256", nullable=True, doc="SHA-256 of the frozen PDF (once sent)."), *TIMESTAMPS,
]
ORDER_FIELDS = [
    _ro("number", "integer"), _ro("display_number"), _ro("quote", "ref", ref="quotes"),
    _ro("opportunity", "ref", ref="opportunities"), _ro("account", "ref", ref="accounts", nullable=True),
    _ro("contact", "ref", ref="contacts", nullable=True),
    _ro("status", "enum", choices=("open", "fulfilled", "canceled")), _ro("order_date", "date"),
    _ro("fulfilled_at", "datetime", nullable=True), _ro("cancel_reason", "text"), *TOTALS, *TIMESTAMPS,
]
INVOICE_FIELDS = [
    _ro("number", nullable=True, doc="Allocated when the invoice is issued."), _ro("display_number"),
    _ro("order", "ref", ref="orders"), _ro("opportunity", "ref", ref="opportunities"),
    _ro("account", "ref", ref="accounts", nullable=True), _ro("contact", "ref", ref="contacts", nullable=True),
    _ro("status", "enum", choices=("draft", "issued", "paid", "canceled")),
    _ro("payment_state", "enum", choices=("draft", "unpaid", "overdue", "paid", "canceled")),
    _ro("issue_date", "date", nullable=True), _ro("due_date", "date", nullable=True),
    F("payment_terms_days", "integer", minimum=0, maximum=3650, update=True,
      doc="Editable while the invoice is a draft (the due date follows when it is issued)."),
    F("payment_terms", "text", max_length=2000, update=True, doc="Editable while the invoice is a draft."),
    F("notes", "text", max_length=5000, update=True, doc="Editable while the invoice is a draft."),
    F("period_start", "date", nullable=True, update=True,
      doc="Start of the service period invoiced (with period_end; e-invoice BG-14). Editable while a draft."),
    F("period_end", "date", nullable=True, update=True, doc="End of the service period, on or after its start."),
    _ro("paid_on", "date", nullable=True), _ro("cancel_reason", "text"), *TOTALS,
    _ro("reminded_at", "datetime", nullable=True, doc="When the last payment reminder was sent (UTC)."),
    _ro("pdf_sha256", nullable=True, doc="SHA-256 of the frozen PDF (once issued)."),
    _ro("credit_note_number", nullable=True,
        doc="Number of the credit note that voided the invoice when it was canceled after being issued; its "
            "PDF is at /invoices/{id}/credit-note.pdf (web session)."), *TIMESTAMPS,
]
LINE_FIELDS = [
    _ro("id", "integer"), _ro("position", "integer"), _ro("product", "ref", ref="products", nullable=True),
    _ro("description"), _ro("quantity", "quantity"), _ro("unit"), _ro("unit_price", "money"),
    _ro("discount_pct", "percent"), _ro("tax_rate", "percent"), _ro("tax_exemption"),
    _ro("supply", "enum", choices=SUPPLY_KEYS), _ro("net", "money"),
    _ro("tax", "money"), _ro("gross", "money"),
]
LINE_INPUTS = [
    F("product", "ref", ref="products", nullable=True,
      doc="A catalog product: fills description, unit, price and tax."),
    F("description", max_length=500), F("quantity", "quantity"), F("unit", max_length=20), F("unit_price", "money"),
    F("discount_pct", "percent"), F("tax_rate", "percent"), F("tax_exemption", max_length=200, doc=EXEMPTION_DOC),
    F("supply", "enum", choices=SUPPLY_KEYS, doc=SUPPLY_DOC + " Default: the product's, else services."),
]
MOVE_INPUTS = [
    F("to", "enum", choices=COLUMNS, required=True, doc="The board column to move the card to."),
    F("estimated_close_date", "date", doc="Fills a missing close date (Propose)."),
    F("account", "ref", ref="accounts", doc="Fills a missing customer (Propose)."),
    F("contact", "ref", ref="contacts", doc="Fills a missing customer (Propose)."),
    *[F(f"line_{f.name}", f.kind, f.max_length, ref=f.ref, doc="A first line (Propose).") for f in LINE_INPUTS],
    F("activate_quote", "boolean", doc="Send the draft quote on the way to Close."),
    F("valid_until", "date", doc="Validity of the quote sent on the way to Close."),
    F("actual_revenue", "money", doc="Won amount (Fulfill)."),
    F("actual_close_date", "date", doc="Won or lost on (Fulfill, Lost)."),
    F("close_reason", "enum", choices=LOST_REASONS, doc="Why the deal was lost (Lost)."),
    F("competitor", max_length=200, doc="Who won instead (Lost)."), F("close_note", "text", max_length=5000),
    F("issue_date", "date", doc="Invoice date (Invoiced)."),
]


def _move(opportunity, actor, version, inputs):
    """A board move; a skip whose first step is unmet names that step (as the board's toast does)."""
    target = inputs.pop("to")
    try:
        return opportunity.move_to(actor, target, version, **inputs).record
    except RuleNotMet as exc:
        if exc.step and exc.step != target:
            exc.message = (f"Cannot skip to {COLUMN_LABELS.get(target, target)}: "
                           f"{COLUMN_LABELS.get(exc.step, exc.step)} comes first. {exc.message}")
        raise


def _same(method, *names):
    """An action whose answer is the record itself, fresh after `method(actor, version, **inputs)`."""
    def run(record, actor, version, inputs):
        getattr(record, method)(actor, version, **{k: inputs[k] for k in names if k in inputs})
        return record
    return run


def _add_line(opportunity, actor, version, inputs):
    opportunity.add_line(actor, version, **inputs)
    return opportunity


QUOTE_DOWNLOADS = [Download("pdf", "The quote as PDF: exactly the bytes frozen when it was sent (ETag: their "
                                   "SHA-256); a draft is rendered now, marked DRAFT.", "application/pdf", pdf_response)]
INVOICE_DOWNLOADS = [
    Download("pdf", "The invoice as PDF: once issued, the frozen PDF/A-3b with its Factur-X XML embedded (ETag: "
                    "its SHA-256); a draft is rendered now, marked DRAFT.", "application/pdf", pdf_response),
    Download("xml", "The issued invoice's Factur-X (EN 16931) XML alone, as embedded in its PDF (409 for a "
                    "draft).", "application/xml", xml_response),
    Download("credit-note/pdf", "The credit note that voided the canceled invoice, as PDF/A-3b with its "
                                "Factur-X XML (404 when it has none).", "application/pdf",
             lambda invoice: pdf_response(CreditNote.of(invoice))),
    Download("credit-note/xml", "The credit note's Factur-X XML (type 381) alone.", "application/xml",
             lambda invoice: xml_response(CreditNote.of(invoice))),
]


def _create_opportunity(actor, values):
    """POST /opportunities: the lead's fields, plus the account and contact choices of qualifying."""
    choices = {k: values.pop(k) for k in ("account", "contact") if k in values}
    return Lead.create_qualified(actor, values, choices)


def _email(record, actor, version, inputs):
    """POST …/email: the panel's Email form; what is not sent is prefilled as the panel prefills it."""
    from models import mail
    mail.send_document(actor, record, dict(mail.compose(record, actor), **inputs))
    return record


EMAIL_INPUTS = [F("to", "text", max_length=3000, doc="Addresses separated by commas (default: the document's "
                                                     "contact, else its account)."),
                F("cc", "text", max_length=3000, doc="Addresses separated by commas (default: none)."),
                F("subject", "text", max_length=200, doc="One line (default: the number, the deal, the company)."),
                F("message", "text", max_length=10000, doc="The mail's text (default: the panel's greeting, "
                                                          "total and validity or due date)."),
                F("copy_to_me", "boolean", doc="A blind copy to the token's user (default: true).")]
EMAIL_SUMMARY = ("Email the stored PDF to the customer through the installation's SMTP_URL, as the panel's Email "
                 "form does (409 without a mail server or for a draft, 503 when the mail server fails; nothing is "
                 "recorded then). The answer is the record; the deal's timeline keeps the email.")

VERSION_DOC = "The version the change is based on (as the If-Match header): a stale one is refused with 409."
REASON = F("reason", "text", max_length=2000, doc="Why (required).")

RESOURCES = [
    Resource("leads", Lead, "lead_id", "Lead", LEAD_FIELDS,
             filters=[Filter("q", "text", (Lead.name, Lead.company, Lead.email, Lead.topic)),
                      Filter("status", "enum", (Lead.status,), LEAD_STATUSES),
                      Filter("source", "enum", (Lead.source,), SOURCES),
                      Filter("rating", "enum", (Lead.rating,), RATINGS), Filter("owner", "owner", (Lead.owner,))],
             create=lambda actor, values: Lead.create_lead(actor, **values),
             actions=[Action("qualify", "Qualify the lead: account, contact and opportunity are created or linked "
                                        "(the board's drag into Develop). Answers with the opportunity.",
                             lambda lead, actor, version, inputs: lead.qualify(actor, version, **inputs),
                             LEAD_INPUTS + QUALIFY_CHOICES, returns="opportunities"),
                      Action("disqualify", "Disqualify the open lead (the card goes to Lost).",
                             _same("disqualify", "reason", "note"),
                             [F("reason", "enum", choices=DISQUALIFY_REASONS, required=True),
                              F("note", "text", max_length=5000)]),
                      Action("reopen", "Reopen a disqualified lead (back to Qualify).", _same("reopen"))],
             doc="People interested in what we sell, not yet qualified."),
    Resource("opportunities", Opportunity, "opportunity_id", "Opportunity", OPPORTUNITY_FIELDS,
             filters=[Filter("q", "text", (Opportunity.topic,)),
                      Filter("status", "enum", (Opportunity.status,), ("open", "won", "lost")),
                      Filter("stage", "enum", (Opportunity.stage,), STAGES),
                      Filter("column", "enum", (Opportunity.column,), COLUMNS),
                      Filter("owner", "owner", (Opportunity.owner,)), Filter("account", "ref", (Opportunity.account,)),
                      Filter("contact", "ref", (Opportunity.contact,))],
             create=_create_opportunity, create_fields=[f for f in LEAD_FIELDS if f.create] + QUALIFY_CHOICES,
             actions=[Action("move", "Move the deal's card to a board column, doing the business step (propose, "
                                     "close, win, fulfil and invoice, lose, reopen); what a rule misses comes back "
                                     "as 422 with `fields`, to be sent again with the move.", _move, MOVE_INPUTS),
                      Action("lines", "Add a line (a catalog product or a free-text item) to an open deal.",
                             _add_line, LINE_INPUTS)],
             lines=True, line_edit=True,
             doc="Deals. Created by qualifying a lead: POST /opportunities takes the lead's fields and does both."),
    Resource("accounts", Account, "account_id", "Account", ACCOUNT_FIELDS,
             filters=[Filter("q", "text", (Account.name, Account.vat_id, Account.email, Account.city)),
                      Filter("owner", "owner", (Account.owner,))],
             create=lambda actor, values: Account.create_account(actor, **values), doc="Companies."),
    Resource("contacts", Contact, "contact_id", "Contact", CONTACT_FIELDS,
             filters=[Filter("q", "text", (Contact.name, Contact.email, Contact.job_title)),
                      Filter("account", "ref", (Contact.account,)), Filter("owner", "owner", (Contact.owner,))],
             create=lambda actor, values: Contact.create_contact(actor, **values),
             doc="People, optionally at an account."),
    Resource("products", Product, "product_id", "Product", PRODUCT_FIELDS,
             filters=[Filter("q", "text", (Product.sku, Product.name)), Filter("active", "boolean", (Product.active,))],
             create=lambda actor, values: Product.create_product(actor, **values),
             doc="The catalog, shared by everyone."),
    Resource("quotes", Quote, "quote_id", "Quote", QUOTE_FIELDS,
             filters=[Filter("status", "enum", (Quote.status,), ("draft", "active", "won", "lost", "revised")),
                      Filter("opportunity", "ref", (Quote.opportunity,))],
             actions=[Action("activate", "Send the draft quote: it becomes active and read-only (its PDF is frozen).",
                             _same("activate", "valid_until"), [F("valid_until", "date")]),
                      Action("revise", "Supersede the active quote with a new draft revision (the answer).",
                             lambda quote, actor, version, inputs: quote.revise(actor, version)),
                      Action("win", "Accept the active quote: the deal is closed as won and the order created.",
                             _same("win", "actual_revenue", "actual_close_date"),
                             [F("actual_revenue", "money"), F("actual_close_date", "date")]),
                      Action("lose", "Mark the quote lost (the deal stays open).", _same("lose")),
                      Action("email", "A sent (active) or won quote: " + EMAIL_SUMMARY, _email, EMAIL_INPUTS),
                      Action("lines", "Add a line to the draft quote.", _add_line, LINE_INPUTS)],
             lines=True, line_edit=True, without=("pdf",), downloads=QUOTE_DOWNLOADS,
             doc="Numbered, revisioned proposals; read-only once sent."),
    Resource("orders", Order, "order_id", "Order", ORDER_FIELDS,
             filters=[Filter("status", "enum", (Order.status,), ("open", "fulfilled", "canceled")),
                      Filter("opportunity", "ref", (Order.opportunity,))],
             actions=[Action("fulfil", "Mark the order delivered (the deal's card follows its documents).",
                             _same("fulfil_and_sync")),
                      Action("invoice", "Draft the order's invoice (the answer).",
                             lambda order, actor, version, inputs: order.create_invoice(actor, version),
                             returns="invoices", status=201),
                      Action("cancel", "Cancel the open order.", _same("cancel", "reason"), [REASON])],
             lines=True, doc="Created from won quotes, with frozen prices."),
    Resource("invoices", Invoice, "invoice_id", "Invoice", INVOICE_FIELDS,
             filters=[Filter("status", "enum", (Invoice.status,), ("draft", "issued", "paid", "canceled")),
                      Filter("opportunity", "ref", (Invoice.opportunity,))],
             actions=[Action("issue", "Issue the draft: the next number is allocated and the document frozen.",
                             _same("issue", "issue_date"),
                             [F("issue_date", "date", doc="Invoice date (default: today; at most tomorrow, and not "
                                                          "before the latest invoice issued in its year).")]),
                      Action("paid", "Record the payment (default: today).", _same("mark_paid", "paid_on"),
                             [F("paid_on", "date")]),
                      Action("cancel", "Cancel the invoice (an issued one keeps its number and is voided by a "
                             "credit note issued with it).",
                             _same("cancel", "reason"), [REASON]),
                      Action("email", "An issued or paid invoice (an overdue one as a payment reminder), or a "
                             "canceled invoice's credit note: " + EMAIL_SUMMARY, _email, EMAIL_INPUTS),
                      Action("lines", "Add a line to the draft invoice.", _add_line, LINE_INPUTS)],
             lines=True, line_edit=True, without=("pdf",), downloads=INVOICE_DOWNLOADS,
             prefetch=Invoice.read_credit_note_numbers,
             doc="Drafted from orders; numbered gaplessly and frozen when issued."),
]
BY_NAME = {r.name: r for r in RESOURCES}
BY_MODEL = {r.model: r for r in RESOURCES}
REF_MODELS = {"users": User, **{r.name: r.model for r in RESOURCES}}
for _resource in RESOURCES:
    for _action in _resource.actions:
        _action.inputs = _action.inputs + [F("version", "integer", minimum=0, doc=VERSION_DOC)]


# ----- errors -----------------------------------------------------------------------------------------
class ApiError(Exception):
    """A refusal of the API layer itself (authentication, content type, malformed JSON, bad parameters)."""

    def __init__(self, status, message, fields=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.fields, self.headers = status, message, dict(fields or {}), headers or {}


HTTP_MESSAGES = {400: "The request could not be understood.", 401: "Authentication required.",
                 403: "You may not do this.", 404: "There is no such record here, or it is out of your reach.",
                 405: "This address does not accept that method.",
                 409: "The request conflicts with the record's state.",
                 413: "The body is too large (at most 4 MB).", 415: "Send the body as JSON (application/json).",
                 422: "The input is not valid."}


def json_response(payload, status=200, headers=None, record=None):
    """A JSON answer; a record's answer carries its version as ETag."""
    response = current_app.response_class(json.dumps(payload, ensure_ascii=False) + "\n", status,
                                          mimetype="application/json")
    if record is not None:
        response.headers["ETag"] = f'"{int(record.version)}"'
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(status, message, fields=None, headers=None, **extra):
    return json_response({"error": message, "fields": dict(fields or {}), **extra}, status, headers)


@bp.errorhandler(ApiError)
def api_error(exc):
    return error_response(exc.status, exc.message, exc.fields, exc.headers)


@bp.errorhandler(DomainError)
def domain_error(exc):
    """A model's refusal: its status (422 rule/validation, 409 state or stale version, 404, 403), its fields."""
    extra, record = {}, None
    if isinstance(exc, RuleNotMet):
        if exc.step:
            extra["step"] = exc.step
        if exc.choices:
            extra["choices"] = {name: [{"value": plain(value), "label": str(label)} for value, label in options]
                                for name, options in exc.choices.items()}
        if exc.defaults:
            extra["defaults"] = {name: plain(value) for name, value in exc.defaults.items()}
        if exc.optional:
            extra["optional"] = list(exc.optional)
    if isinstance(exc, StaleVersion):
        record = exc.record
        extra["current_version"] = int(record.version)
        resource = BY_MODEL.get(type(record))
        if resource is not None:
            extra["record"] = record_json(resource, record)
    response = error_response(exc.status, exc.message, exc.fields, **extra)
    if record is not None:
        response.headers["ETag"] = f'"{int(record.version)}"'
    return response


def http_error(exc):
    return error_response(exc.code or 500, HTTP_MESSAGES.get(exc.code, exc.name))


bp.register_error_handler(HTTPException, http_error)
for _code in default_exceptions:  # by code too: the app's handlers by code would otherwise answer in HTML
    bp.register_error_handler(_code, http_error)


@bp.errorhandler(Exception)
def unexpected_error(exc):
    current_app.logger.exception("API request failed")
    return error_response(500, "Something went wrong on our side. Nothing was saved.")


# ----- authentication --------------------------------------------------------------------------------
@bp.before_request
def authenticate():
    """Every request authenticates with its own bearer token (no session, no cookies); then the records
    named in the URL are loaded through the access rule, as for the web UI (404 out of reach, 403 read-only)."""
    if request.endpoint in PUBLIC:
        return
    scheme, _, raw = request.headers.get("Authorization", "").strip().partition(" ")
    challenge = 'Bearer realm="Pipeline CRM API"'
    if scheme.lower() != "bearer" or not raw.strip():
        raise ApiError(401, "Send an API token: Authorization: Bearer <token> (create one on your profile page).",
                       headers={"WWW-Authenticate": challenge})
    user = ApiToken.authenticate(raw.strip())
    if user is None:
        raise ApiError(401, "This API token is unknown or revoked, or its user is deactivated.",
                       headers={"WWW-Authenticate": challenge + ', error="invalid_token"'})
    g.user = user
    load_url_records()


# ----- reading input ---------------------------------------------------------------------------------
def _reject_constant(name):
    raise ValueError(name)


def read_body():
    """The JSON object sent (an empty body is {}): 415 for another content type, 400 when malformed."""
    data = request.get_data(cache=True)
    if not data.strip():
        return {}
    mimetype = request.mimetype or ""
    if mimetype not in JSON_TYPES and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise ApiError(415, "Send the body as JSON (Content-Type: application/json).")
    try:
        body = json.loads(data.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return body


def _text_problem(value):
    """The models' rule for text (models/validation.py), also applied to query parameters; line breaks
    are left to the model, which knows which fields take several lines."""
    return text_problem(value, multiline=True)


TYPE_MESSAGES = {"integer": "Expected a whole number.", "boolean": "Expected true or false.",
                 "money": "Expected an amount as a string, such as \"1234.50\".",
                 "percent": "Expected a percentage as a string, such as \"19.00\".",
                 "quantity": "Expected a quantity as a string, such as \"1.5\".",
                 "ref": "Expected the id of a record (a whole number).", "date": "Expected a date as YYYY-MM-DD."}


def _parse_field(f, raw):
    """The value of one input field, or (None, message) when its JSON type is wrong."""
    if raw is None:
        return (None, None) if f.nullable else (None, "This field cannot be null.")
    kind = f.kind
    if kind in ("integer", "ref") and isinstance(raw, int) and not isinstance(raw, bool):
        return raw, None
    if kind == "ref" and f.new_ok and raw == "new":
        return raw, None
    if kind == "boolean" and isinstance(raw, bool):
        return raw, None
    if kind in ("money", "percent", "quantity") and (isinstance(raw, (int, Decimal)) and not isinstance(raw, bool)):
        # as the digits were sent, so the model refuses decimals it cannot keep instead of rounding them away
        return (f"{raw.normalize():f}" if isinstance(raw, Decimal) and raw.is_finite() else raw), None
    if isinstance(raw, str) and kind in ("string", "text", "enum", "date", "money", "percent", "quantity"):
        return raw, _text_problem(raw)
    return None, TYPE_MESSAGES.get(kind, "Expected a string.")


def parse_input(fields, body, read_only=(), check_required=True):
    """The body checked against the input fields: JSON types, unknown and read-only names, and required ones
    unless the model checks those itself (creating: with every other field's message at once)."""
    by_name = {f.name: f for f in fields}
    values, errors = {}, {}
    for name, raw in body.items():
        spec = by_name.get(name)
        if spec is None:
            errors[name[:100]] = "This field is read-only." if name in read_only else "Unknown field."
            continue
        value, problem = _parse_field(spec, raw)
        if problem:
            errors[name] = problem
        else:
            values[name] = value
    for spec in fields:
        if spec.required and check_required and spec.name not in body:
            errors[spec.name] = "This field is required."
    for spec in fields:  # linked records must be within the user's reach, as in the web UI's choices
        value = values.get(spec.name)
        model = REF_MODELS.get(spec.ref)
        if spec.kind == "ref" and isinstance(value, int) and spec.name not in errors and model is not None \
                and model is not User and hasattr(model, "access_rule"):
            if not 0 < value <= MAX_ID or load_record(model, value, write=False) is None:
                errors[spec.name] = f"Unknown {BY_NAME[spec.ref].singular}."
    if errors:
        raise ApiError(422, "The input is not valid.", errors)
    return values


def expected_version(values):
    """The version a change is based on: the If-Match header (an ETag), else `version` in the body; None
    when neither is given (the change then applies to whatever is current)."""
    header = request.headers.get("If-Match")
    body_version = values.pop("version", None)
    if header is None:
        return body_version
    value = header.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise ApiError(400, 'If-Match must be one ETag of the record, such as "3".')
    return int(value)


def _query_int(name, minimum, maximum, errors):
    raw = request.args.get(name)
    if raw is None:
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12 or not minimum <= int(text) <= maximum:
        errors[name] = f"Enter a whole number from {minimum} to {maximum}."
        return None
    return int(text)


def _paging():
    errors = {}
    limit = _query_int("limit", 1, MAX_LIMIT, errors) or DEFAULT_LIMIT
    offset = _query_int("offset", 0, 10 ** 9, errors)
    page = _query_int("page", 1, 10 ** 6, errors)
    if offset is not None and page is not None:
        errors["page"] = "Give either offset or page."
    return limit, offset if offset is not None else ((page or 1) - 1) * limit, errors


def _apply_filters(resource, query):
    errors = {}
    for flt in resource.filters:
        raw = request.args.get(flt.name)
        if raw is None or raw == "":
            continue
        if _text_problem(raw) or len(raw) > 100:
            errors[flt.name] = "At most 100 characters, without control characters."
            continue
        text = raw.strip()
        if flt.kind == "text":
            condition = None
            for column in flt.columns:
                clause = column.contains(text)
                condition = clause if condition is None else condition | clause
            query = query.where(condition)
        elif flt.kind == "enum":
            if text not in flt.choices:
                errors[flt.name] = "Choose one of: " + ", ".join(flt.choices) + "."
            else:
                query = query.where(flt.columns[0] == text)
        elif flt.kind == "boolean":
            if text not in ("true", "false"):
                errors[flt.name] = "Use true or false."
            else:
                query = query.where(flt.columns[0] == (text == "true"))
        elif flt.kind == "owner" and text == "me":
            query = query.where(flt.columns[0] == g.user.id)
        elif text.isascii() and text.isdigit() and len(text) <= 12:
            query = query.where(flt.columns[0] == int(text))
        else:
            errors[flt.name] = 'Give an id' + (' or "me".' if flt.kind == "owner" else ".")
    return query, errors


# ----- writing output --------------------------------------------------------------------------------
def plain(value):
    """A Python value as JSON: Decimal as a string with its places, dates ISO, records by id."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime.datetime):
        return value.replace(microsecond=0).isoformat() + "Z"
    if isinstance(value, datetime.date):
        return value.isoformat()
    if hasattr(value, "_meta") and hasattr(value, "id"):
        return value.id
    return value


def record_url(resource, record):
    return f"{PREFIX}/{resource.name}/{record.id}"


def record_json(resource, record, detail=False):
    """The JSON of a record: id, version, its fields, its URL (and its lines on single-record answers)."""
    data = {"id": record.id, "version": int(record.version)}
    for spec in resource.fields:
        data[spec.name] = plain(spec.value(record))
    data["url"] = record_url(resource, record)
    if detail and resource.lines:
        data["lines"] = [{spec.name: plain(spec.value(line)) for spec in LINE_FIELDS} for line in record.line_rows()]
    return data


def record_response(resource, record, status=200):
    """A single record, fresh from the database, with its ETag (and Location when it was just created)."""
    fresh = resource.model.get_by_id(record.id)
    headers = {"Location": record_url(resource, fresh)} if status == 201 else None
    return json_response(record_json(resource, fresh, detail=True), status, headers, record=fresh)


# ----- the routes --------------------------------------------------------------------------------------
def _register(resource):
    model = resource.model
    read_only = {f.name for f in resource.fields} | {"id", "version", "url", "lines"}

    def list_records():
        """A page of the records within the user's reach, filtered."""
        limit, offset, errors = _paging()
        base = model.select_without(*resource.without) if resource.without else model.select()
        query, filter_errors = _apply_filters(resource, in_reach(base))
        errors.update(filter_errors)
        if errors:
            raise ApiError(422, "The query parameters are not valid.", errors)
        total = query.count()
        rows = list(query.order_by(model.id).limit(limit).offset(offset))
        if resource.prefetch is not None:
            resource.prefetch(rows)
        following = None
        if offset + limit < total:
            args = {k: v for k, v in request.args.items() if k != "page"}
            args.update(offset=offset + limit, limit=limit)
            following = f"{request.path}?{urlencode(args)}"
        return json_response({"items": [record_json(resource, row) for row in rows], "total": total,
                              "limit": limit, "offset": offset, "next": following})

    def get_record(**_):
        """One record (404 when it does not exist or is out of reach)."""
        return record_response(resource, url_record(resource.arg))

    def create_record():
        """Create a record through the model's create method."""
        fields = resource.writable("create")
        values = parse_input(fields, read_body(), read_only, check_required=False)
        for spec in fields:  # absent = blank: the model then says "required" beside its other messages
            if spec.required:
                values.setdefault(spec.name, "")
        record = resource.create(g.user, values)
        target = BY_MODEL[type(record)]
        return record_response(target, record, 201)

    def update_record(**_):
        """Change fields through the model's update_fields (one history event; If-Match honoured)."""
        record = url_record(resource.arg)
        body = read_body()
        version_field = F("version", "integer", minimum=0)
        values = parse_input(resource.writable("update") + [version_field], body, read_only, check_required=False)
        version = expected_version(values)
        if values:
            record.update_fields(g.user, expected_version=version, **values)
        elif version is not None:
            record.check_version(version)
        return record_response(resource, record)

    bp.add_url_rule(f"/{resource.name}", f"{resource.name}_list", list_records, methods=["GET"])
    bp.add_url_rule(f"/{resource.name}/<int:{resource.arg}>", f"{resource.name}_get", get_record, methods=["GET"])
    if resource.create is not None:
        bp.add_url_rule(f"/{resource.name}", f"{resource.name}_create", create_record, methods=["POST"])
    if resource.writable("update"):
        bp.add_url_rule(f"/{resource.name}/<int:{resource.arg}>", f"{resource.name}_update", update_record,
                        methods=["PATCH"])
    for action in resource.actions:
        _register_action(resource, action)
    if resource.line_edit:
        _register_line_routes(resource)
    for download in resource.downloads:
        _register_download(resource, download)


def _register_download(resource, download):
    def get_file(**_):
        """A file of the record (its PDF or e-invoice XML), under the record's access rule."""
        return download.answer(url_record(resource.arg))

    bp.add_url_rule(f"/{resource.name}/<int:{resource.arg}>/{download.path}",
                    f"{resource.name}_{download.path.replace('/', '_').replace('-', '_')}", get_file, methods=["GET"])


def _register_line_routes(resource):
    def update_line(line_id, **_):
        """Change one line through the document's update_line (one history event; If-Match honoured)."""
        record = url_record(resource.arg)
        values = parse_input(LINE_INPUTS + [F("version", "integer", minimum=0)], read_body())
        version = expected_version(values)
        record.update_line(g.user, line_id, version, **values)
        return record_response(resource, record)

    def remove_line(line_id, **_):
        """Remove one line through the document's remove_line (If-Match honoured)."""
        record = url_record(resource.arg)
        if not record.remove_line(g.user, line_id, expected_version({})):
            raise NotFound("That line is not on this document.")
        return record_response(resource, record)

    rule = f"/{resource.name}/<int:{resource.arg}>/lines/<int:line_id>"
    bp.add_url_rule(rule, f"{resource.name}_update_line", update_line, methods=["PATCH"])
    bp.add_url_rule(rule, f"{resource.name}_remove_line", remove_line, methods=["DELETE"])


def _register_action(resource, action):
    def run_action(**_):
        """A business step through the model method the board and the panels call (If-Match honoured)."""
        record = url_record(resource.arg)
        values = parse_input(action.inputs, read_body())
        version = expected_version(values)
        answer = action.run(record, g.user, version, values)
        return record_response(BY_NAME[action.returns or resource.name], answer, action.status)

    bp.add_url_rule(f"/{resource.name}/<int:{resource.arg}>/{action.name}", f"{resource.name}_{action.name}",
                    run_action, methods=["POST"])


for _resource in RESOURCES:
    _register(_resource)


@bp.get("/me")
def me():
    """The user the token belongs to (ids for owner fields and filters)."""
    user = g.user
    team = {"id": user.team_id, "name": user.team.name} if user.team_id else None
    return json_response({"id": user.id, "name": user.name, "email": user.email, "role": user.role, "team": team})


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API, built from RESOURCES (public: it holds no data)."""
    response = json_response(openapi_document(current_app.config["CURRENCY"]))
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(path):
    """Any other address under /api/v1: 405 when the path exists for other methods, else 404."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if endpoint != "api.unknown":
            allowed.append(method)
    if allowed:
        raise ApiError(405, f"This address accepts {', '.join(allowed)}.", headers={"Allow": ", ".join(allowed)})
    raise ApiError(404, "There is nothing at this address: the API is described at /api/v1/openapi.json.")


# ----- the OpenAPI document (built from RESOURCES) ----------------------------------------------------
DECIMAL_OUT = r"^-?[0-9]+(\.[0-9]+)?$"
DECIMAL_IN = {"money": (r"^[0-9]{1,13}(\.[0-9]{1,2})?$", "1234.50"),
              "percent": (r"^[0-9]{1,3}(\.[0-9]{1,2})?$", "19.00"),
              "quantity": (r"^[0-9]{1,10}(\.[0-9]{1,3})?$", "1.5")}
IF_MATCH = r'^(\*|(W/)?"[0-9]{1,12}")$'
ERRORS_DOC = {400: "Malformed JSON or If-Match header.", 401: "No token, or an unknown or revoked one, or its user "
              "is deactivated.", 403: "The record is in reach but read-only for this user (or an owner change is "
              "not allowed).", 404: "No such record, or out of the user's reach.",
              409: "The record changed since the version given (If-Match or `version`), or its state does not allow "
                   "this step; a stale version answers with the current ETag, `current_version` and the `record`.",
              413: "The body is larger than 4 MB.", 415: "The body is not JSON.",
              422: "Invalid input or a business rule that does not hold: `fields` names what is missing or wrong "
                   "(field -> message); a rule adds `step`, and `choices` / `defaults` where the board's dialog "
                   "offers them."}
API_DESCRIPTION = """The Pipeline CRM JSON API: the same records, rules and reach as the web UI.

**Authentication.** Create a token on your profile page (/profile, "API tokens"); it is shown once. Send it
with every request as `Authorization: Bearer <token>`. The API user sees and changes exactly what they see and
change in the web UI. A revoked token, or one of a deactivated user, gets 401. This document is public.

**Records.** Money is a decimal string in {currency} (`"1234.50"`), percentages and quantities too; dates are
`YYYY-MM-DD`, timestamps UTC ISO 8601. Lists take `limit` (1-200, default 50) with `offset` or `page`, and
filters; they answer `items`, `total` and the URL of the `next` page.

**Versions.** Every record has a `version` and every record answer an `ETag: "<version>"`. PATCH and actions
honour `If-Match: "<version>"` (or `version` in the body): a stale one is refused with 409 and the current
ETag. Without either the change applies to the record as it is now (last writer wins).

**Errors** are `{{"error": message, "fields": {{field: message}}}}`: 400 malformed JSON, 401 no or bad token,
403 read-only, 404 missing or out of reach, 409 stale version or a step the record's state does not allow,
415 not JSON, 422 invalid input or an unmet business rule (fields = what is missing)."""


def _nullable(schema):
    if "anyOf" in schema:
        schema["anyOf"].append({"type": "null"})
    else:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = schema["enum"] + [None]
    return schema


def field_schema(f, for_input=False):
    """The JSON Schema of one field, as answered (or, for_input, as accepted)."""
    kind = f.kind
    if kind == "enum":
        schema = {"type": "string", "enum": list(f.choices)}
    elif kind == "integer":
        schema = {"type": "integer"}
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.maximum is not None:
            schema["maximum"] = f.maximum
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind in DECIMAL_IN:
        pattern, example = DECIMAL_IN[kind] if for_input else (DECIMAL_OUT, DECIMAL_IN[kind][1])
        schema = {"type": "string", "pattern": pattern, "examples": [example]}
    elif kind == "date":
        schema = {"type": "string", "format": "date"}
    elif kind == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "ref":
        schema = {"type": "integer", "minimum": 1}
        if for_input:
            schema["maximum"] = MAX_ID
        if f.new_ok:
            schema = {"anyOf": [schema, {"type": "string", "enum": ["new"]}]}
    else:
        schema = {"type": "string"}
        if for_input and f.max_length:
            schema["maxLength"] = f.max_length
    if f.doc:
        schema["description"] = f.doc
    return _nullable(schema) if f.nullable else schema


def _object(fields, for_input, required=(), description=None):
    schema = {"type": "object", "properties": {f.name: field_schema(f, for_input) for f in fields},
              "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    return schema


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _record_answer(title, status_doc, created=False):
    headers = {"ETag": {"description": "The record's version, quoted.", "required": True,
                        "schema": {"type": "string", "pattern": '^"[0-9]+"$'}}}
    if created:
        headers["Location"] = {"description": "The new record's URL.", "required": True, "schema": {"type": "string"}}
    return {"description": status_doc, "headers": headers, "content": {"application/json": {"schema": _ref(title)}}}


def _errors(*codes):
    return {str(code): {"$ref": f"#/components/responses/Error{code}"} for code in codes}


def _path_param(resource):
    return {"name": resource.arg, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


IF_MATCH_PARAM = {"name": "If-Match", "in": "header", "required": False,
                  "description": 'The ETag the change is based on ("<version>"); * or absent: no check.',
                  "schema": {"type": "string", "pattern": IF_MATCH}}
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422)


def _filter_param(flt):
    schema = {"text": {"type": "string", "maxLength": 100},
              "enum": {"type": "string", "enum": list(flt.choices)},
              "boolean": {"type": "string", "enum": ["true", "false"]},
              "owner": {"type": "string", "pattern": "^(me|[0-9]{1,12})$"},
              "ref": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}[flt.kind]
    doc = {"text": "Text search (contains, case-insensitive).", "owner": 'An owner: a user id, or "me".',
           "ref": "The id of a linked record."}.get(flt.kind, "Only these.")
    return {"name": flt.name, "in": "query", "required": False, "description": doc, "schema": schema}


def _body(schema_name, required):
    return {"required": required, "content": {"application/json": {"schema": _ref(schema_name)}}}


_DOCUMENT = {}


def openapi_document(currency):
    """The OpenAPI 3.1 document of the API, built once per currency from RESOURCES."""
    if currency in _DOCUMENT:
        return _DOCUMENT[currency]
    line = _object(LINE_FIELDS, False, [f.name for f in LINE_FIELDS])
    error = {"type": "object", "required": ["error", "fields"], "additionalProperties": False, "properties": {
        "error": {"type": "string"}, "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        "step": {"type": "string", "enum": list(COLUMNS)},
        "choices": {"type": "object", "additionalProperties": {"type": "array", "items": {
            "type": "object", "required": ["value", "label"], "additionalProperties": False,
            "properties": {"value": {"type": ["integer", "string"]}, "label": {"type": "string"}}}}},
        "defaults": {"type": "object"}, "optional": {"type": "array", "items": {"type": "string"}},
        "current_version": {"type": "integer"}, "record": {"type": "object"}}}
    user = {"type": "object", "additionalProperties": False, "required": ["id", "name", "email", "role", "team"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"},
                           "role": {"type": "string", "enum": ["seller", "manager", "admin"]},
                           "team": {"type": ["object", "null"], "required": ["id", "name"],
                                    "additionalProperties": False,
                                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}}}
    schemas = {"Error": error, "Line": line, "User": user}
    paths = {}
    for resource in RESOURCES:
        title = resource.title
        record = {"id": {"type": "integer"}, "version": {"type": "integer", "minimum": 1}}
        record.update({f.name: field_schema(f) for f in resource.fields})
        record["url"] = {"type": "string"}
        required = list(record)
        if resource.lines:
            record["lines"] = {"type": "array", "items": _ref("Line"), "description": "On single-record answers."}
        schemas[title] = {"type": "object", "properties": record, "required": required,
                          "additionalProperties": False, "description": resource.doc}
        schemas[f"{title}List"] = {"type": "object", "additionalProperties": False,
                                   "required": ["items", "total", "limit", "offset", "next"], "properties": {
                                       "items": {"type": "array", "items": _ref(title)}, "total": {"type": "integer"},
                                       "limit": {"type": "integer"}, "offset": {"type": "integer"},
                                       "next": {"type": ["string", "null"]}}}
        tag = [title + "s" if not title.endswith("y") else title[:-1] + "ies"]
        collection = {"get": {
            "operationId": f"list{title}s", "summary": f"List {resource.name} within your reach", "tags": tag,
            "parameters": [
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                {"name": "offset", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": 10 ** 9}},
                {"name": "page", "in": "query", "required": False, "description": "Instead of offset.",
                 "schema": {"type": "integer", "minimum": 1, "maximum": 10 ** 6}},
                *[_filter_param(flt) for flt in resource.filters]],
            "responses": {"200": {"description": "A page of records.",
                                  "content": {"application/json": {"schema": _ref(f"{title}List")}}},
                          **_errors(401, 422)}}}
        if resource.create is not None:
            fields = resource.writable("create")
            schemas[f"{title}Create"] = _object(fields, True, [f.name for f in fields if f.required])
            collection["post"] = {
                "operationId": f"create{title}", "summary": f"Create a {resource.singular}", "tags": tag,
                "requestBody": _body(f"{title}Create", True),
                "responses": {"201": _record_answer(title, "Created.", created=True),
                              **_errors(*[c for c in WRITE_ERRORS if c != 404])}}
            if resource.name == "opportunities":
                collection["post"]["description"] = ("Creates a lead from the fields and qualifies it in one step "
                                                     "(the qualify rules apply; nothing is kept on a refusal).")
        paths[f"{PREFIX}/{resource.name}"] = collection
        item = {"parameters": [_path_param(resource)], "get": {
            "operationId": f"get{title}", "summary": f"One {resource.singular}", "tags": tag,
            "responses": {"200": _record_answer(title, "The record."), **_errors(401, 404)}}}
        if resource.writable("update"):
            fields = resource.writable("update") + [F("version", "integer", minimum=0, doc=VERSION_DOC)]
            schemas[f"{title}Update"] = _object(fields, True)
            item["patch"] = {
                "operationId": f"update{title}", "summary": f"Change fields of a {resource.singular}", "tags": tag,
                "parameters": [IF_MATCH_PARAM], "requestBody": _body(f"{title}Update", True),
                "responses": {"200": _record_answer(title, "The changed record."), **_errors(*WRITE_ERRORS)}}
        paths[f"{PREFIX}/{resource.name}/{{{resource.arg}}}"] = item
        for action in resource.actions:
            name = f"{title}{action.name.capitalize()}"
            schemas[name] = _object(action.inputs, True, [f.name for f in action.inputs if f.required])
            answer = BY_NAME[action.returns or resource.name].title
            paths[f"{PREFIX}/{resource.name}/{{{resource.arg}}}/{action.name}"] = {
                "parameters": [_path_param(resource)], "post": {
                    "operationId": f"{action.name}{title}", "summary": action.summary, "tags": tag,
                    "parameters": [IF_MATCH_PARAM],
                    "requestBody": _body(name, any(f.required for f in action.inputs)),
                    "responses": {str(action.status): _record_answer(answer, f"The {answer.lower()} after the step."),
                                  **_errors(*WRITE_ERRORS)}}}
        for download in resource.downloads:
            binary = {"type": "string", "contentMediaType": download.media_type}
            paths[f"{PREFIX}/{resource.name}/{{{resource.arg}}}/{download.path}"] = {
                "parameters": [_path_param(resource)], "get": {
                    "operationId": f"download{title}{''.join(p.capitalize() for p in re.split('[/-]', download.path))}",
                    "summary": download.summary, "tags": tag,
                    "responses": {"200": {"description": "The file (Content-Disposition names it).",
                                          "content": {download.media_type: {"schema": binary}}},
                                  **_errors(401, 404, *([409] if download.media_type == "application/xml" else []))}}}
        if resource.line_edit:
            fields = LINE_INPUTS + [F("version", "integer", minimum=0, doc=VERSION_DOC)]
            schemas[f"{title}LineUpdate"] = _object(fields, True)
            line_param = {"name": "line_id", "in": "path", "required": True,
                          "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}
            answer = _record_answer(title, f"The {resource.singular} with its lines.")
            paths[f"{PREFIX}/{resource.name}/{{{resource.arg}}}/lines/{{line_id}}"] = {
                "parameters": [_path_param(resource), line_param],
                "patch": {"operationId": f"update{title}Line", "summary": f"Change a line of a {resource.singular}",
                          "tags": tag, "parameters": [IF_MATCH_PARAM], "requestBody": _body(f"{title}LineUpdate", True),
                          "responses": {"200": answer, **_errors(*WRITE_ERRORS)}},
                "delete": {"operationId": f"remove{title}Line", "summary": f"Remove a line of a {resource.singular}",
                           "tags": tag, "parameters": [IF_MATCH_PARAM],
                           "responses": {"200": answer, **_errors(*[c for c in WRITE_ERRORS if c not in (413, 415)])}}}
    paths[f"{PREFIX}/me"] = {"get": {"operationId": "me", "summary": "The token's user", "tags": ["Users"],
                                     "responses": {"200": {"description": "The user.", "content": {
                                         "application/json": {"schema": _ref("User")}}}, **_errors(401)}}}
    responses = {f"Error{code}": {"description": doc, "content": {"application/json": {"schema": _ref("Error")}}}
                 for code, doc in ERRORS_DOC.items()}
    _DOCUMENT[currency] = {
        "openapi": "3.1.0",
        "info": {"title": "Pipeline CRM API", "version": "1", "description": API_DESCRIPTION.format(currency=currency)},
        "paths": paths,
        "components": {"schemas": schemas, "responses": responses, "securitySchemes": {"bearerAuth": {
            "type": "http", "scheme": "bearer", "bearerFormat": "pcrm_<prefix>_<secret>",
            "description": "A personal API token from the profile page."}}},
        "security": [{"bearerAuth": []}],
    }
    return _DOCUMENT[currency]
