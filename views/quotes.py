"""Quotes: the detail panel (inline fields and line editor while draft), the lifecycle actions, the list.

The order and invoice pages share the document helpers defined here: the related records, the
timeline, the action forms and the one way an action answers (refreshed panel, error at the form).
"""
import re
from dataclasses import dataclass, field as dc_field

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup
from peewee import JOIN, fn

from models import (Account, Contact, DomainError, HistoryEvent, Invoice, Opportunity, Order, Quote, RuleNotMet,
                    StaleVersion, ValidationError)

from .common import from_board, in_reach, is_htmx, load_record, render
from .inline import Field, register_fields
from .lines import lines_context, register_lines

bp = Blueprint("quotes", __name__)


# ----- shared by the quote, order and invoice panels ------------------------------------------------
@dataclass
class Input:
    """One input of an action form (a date, an amount, a reason)."""

    name: str
    label: str
    widget: str = "text"
    value: object = ""
    required: bool = False
    max_length: int = 2000
    rows: int = 3


@dataclass
class Action:
    """A lifecycle step offered in a panel: a button, an inline form, or a form opened below the buttons."""

    name: str
    label: str
    endpoint: str
    style: str = ""
    layout: str = "button"
    inputs: list = dc_field(default_factory=list)
    submit: str = None
    intro: str = ""
    disabled: str = None
    error: DomainError = None
    expanded: bool = False

    @property
    def field_errors(self):
        names = {i.name for i in self.inputs}
        return {k: v for k, v in (self.error.fields if self.error else {}).items() if k in names}

    @property
    def other_errors(self):
        names = {i.name for i in self.inputs}
        return {k: v for k, v in (self.error.fields if self.error else {}).items() if k not in names}


@dataclass
class DocumentView:
    """How one kind of document is loaded and rendered (its panel context builds the actions)."""

    model: type
    kind: str
    endpoint: str
    label: str
    context: object

    @property
    def page(self):
        return f"{self.endpoint}/detail.html"

    @property
    def fragment(self):
        return f"{self.endpoint}/_panel.html"

    def load(self, record_id):
        """A fresh copy of one of this view's records within the user's reach (the one in the URL was
        access-checked before the view ran; after an action the panel may show another one)."""
        record = load_record(self.model, record_id, write=False)
        if record is None:
            abort(404)
        return record


def finish_actions(actions, opened=None, failed=None):
    """Mark the action whose form is open, and put a refused action's input back with its messages."""
    name, exc, form = failed if failed else (None, None, {})
    for action in actions:
        if action.name == name:
            action.error = exc
            action.expanded = action.layout != "inline"
            for item in action.inputs:
                if item.name in form:
                    item.value = form[item.name]
                elif item.widget == "checkbox":  # an unticked box is not sent
                    item.value = False
        elif action.name == opened and action.layout == "expand" and not action.disabled:
            action.expanded = True
    return actions


PDF_ENDPOINTS = {"quote": "documents.quote_pdf", "invoice": "documents.invoice_pdf"}


def deal_documents(opportunity_id):
    """Every quote revision, order and invoice of a deal, oldest first."""
    quotes = list(Quote.select_without("pdf").where(Quote.opportunity == opportunity_id)
                  .order_by(Quote.number, Quote.revision))
    orders = list(Order.select().where(Order.opportunity == opportunity_id).order_by(Order.id))
    invoices = list(Invoice.select_without("pdf").where(Invoice.opportunity == opportunity_id).order_by(Invoice.id))
    return quotes, orders, invoices


def document_context(view, record, fields, actions, notice=None):
    """What every document panel shows: head, fields, lines and totals, related records, timeline."""
    opportunity = Opportunity.get_by_id(record.opportunity_id)
    quotes, orders, invoices = deal_documents(record.opportunity_id)
    documents = {(d.record_type, d.id): d for d in [record] + quotes + orders + invoices}
    pdf_endpoint = PDF_ENDPOINTS.get(view.kind)
    pdf_url = (url_for(pdf_endpoint, **{f"{view.kind}_id": record.id})
               if pdf_endpoint in current_app.view_functions else None)
    return {"record": record, view.kind: record, "kind_label": view.label, "fields": fields, "actions": actions,
            "notice": notice, "opportunity": opportunity, "quotes": quotes, "orders": orders, "invoices": invoices,
            "events": list(HistoryEvent.about(*documents.values()).limit(200)), "activities": [],
            "on_board": from_board(), "pdf_url": pdf_url,
            **lines_context(record, view.kind, view.endpoint)}


EMAIL_LABELS = {"quote": "Email the quote", "invoice": "Email the invoice", "reminder": "Send a payment reminder",
                "credit_note": "Email the credit note"}


def email_action(document):
    """The "Email" form of a document that can be mailed now (models.mail.mail_kind; None otherwise),
    prefilled with the customer, a subject and a message, or the same button disabled with the reason when
    this installation has no mail server."""
    from models import Settings, mail
    kind = mail.mail_kind(document)
    if kind is None:
        return None
    action = Action("email", EMAIL_LABELS[kind], f"{document.record_type}s.email", layout="expand",
                    submit="Send the email",
                    intro="The stored PDF goes to the customer as an attachment, from the company's address "
                          "with replies to you; the deal's timeline keeps the email.")
    reason = mail.unavailable_reason(Settings.load(logo=False))
    if reason:
        action.disabled = reason
        return action
    values = mail.compose(document, g.user)
    action.inputs = [Input("to", "To", "emails", values["to"], True),
                     Input("cc", "Cc", "emails", values["cc"]),
                     Input("subject", "Subject", "text", values["subject"], True),
                     Input("message", "Message", "textarea", values["message"], True, max_length=10000, rows=9),
                     Input("copy_to_me", "Send me a copy", "checkbox", values["copy_to_me"])]
    return action


def email_step(view):
    """The step of an "Email" form: the mail goes out, then the panel says to whom."""
    from models import mail

    def step(document, version, form):
        sent, accepted, refused = mail.send_document(g.user, document, form)
        told = f"{sent.display_number} was emailed to {', '.join(accepted)}."
        if refused:
            told += f" The mail server refused {', '.join(refused)}."
        return view, document, told
    return step


def panel_response(view, record, status=200, toast=None, after="", **state):
    """The panel (fragment for htmx, else the page), with out-of-band board updates after it."""
    context = view.context(record, **state)
    return render(view.page, view.fragment, status, toast=toast, after=Markup(after), **context)


def refreshed_parts(view, record):
    """Out-of-band summary, actions and related list after a line or field change (plain HTML text)."""
    context = view.context(record)
    parts = (f"{view.endpoint}/_summary.html", "quotes/_doc_actions.html", "quotes/_doc_related.html")
    return "".join(render_template(name, part_oob=True, **context) for name in parts)


def board_cards(opportunity_id, old_column):
    """The deal's card follows an action when the request came from the board (moved if its column changed).

    Plain HTML text, like card_refresh: adding a Markup to a str would escape the str.
    """
    from .board import card_refresh, card_update
    if not from_board():
        return ""
    opportunity = Opportunity.get_by_id(opportunity_id)
    if opportunity.column == old_column:
        return str(card_refresh(opportunity))
    removed = f'<li id="card-opportunity-{opportunity.id}" hx-swap-oob="delete"></li>' if old_column else ""
    return removed + str(card_update(opportunity, [c for c in (old_column, opportunity.column) if c]))


def run_action(view, record_id, name, step):
    """Call one lifecycle step with the form's version; answer with the refreshed panel or the refusal.

    `step(record, version, form)` returns (view, record to show, message). Rules not met and bad input
    are 422 with the messages at the action's form; a stale version or an impossible step is 409.
    """
    record = view.load(record_id)
    old_column = Opportunity.select(Opportunity.column).where(Opportunity.id == record.opportunity_id).scalar()
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        shown_view, shown, message = step(record, form.get("version"), form)
    except (RuleNotMet, ValidationError) as exc:
        return panel_response(view, view.load(record.id), 422, failed=(name, exc, form))
    except StaleVersion as exc:
        return panel_response(view, view.load(record.id), 409, notice=exc.message)
    except DomainError as exc:
        return panel_response(view, view.load(record.id), exc.status, notice=exc.message)
    if not is_htmx():
        flash(message, "info")
        return redirect(url_for(f"{shown_view.endpoint}.detail", **{f"{shown_view.kind}_id": shown.id}), 303)
    return panel_response(shown_view, shown_view.load(shown.id), toast={"message": message, "kind": "info"},
                          after=board_cards(record.opportunity_id, old_column))


def text_filter(args):
    """The search text of a list, lower-cased and bounded."""
    return (args.get("q") or "").strip().lower()[:100]


def customer_sort():
    return fn.COALESCE(Account.name, Contact.name)


# ----- quotes ----------------------------------------------------------------------------------------
FIELDS = [
    Field("valid_until", "Valid until", "date"),
    Field("payment_terms", "Payment terms", "textarea", max_length=2000),
    Field("notes", "Notes", "textarea", max_length=5000),
]
STATUSES = ("draft", "active", "won", "lost", "revised")


def quote_actions(quote):
    """The steps possible now for this quote (an impossible one is not offered)."""
    actions = []
    lose = Action("lose", "Lose", "quotes.lose", "danger", "expand", submit="Mark the quote lost",
                  intro="The quote is marked lost; the deal stays open for another quote.")
    possible = quote.possible_actions()
    if "activate" in possible:
        other = quote.active_sibling()
        activate = Action("activate", "Activate (send)", "quotes.activate", "primary", submit="Activate (send)",
                          intro="The quote becomes active (sent to the customer) and read-only.")
        if other is not None:
            activate.disabled = f"Quote {other.display_number} is already active for this deal."
        actions += [activate, lose]
    elif "win" in possible:
        defaults = quote.opportunity.win_defaults()
        revenue, closed = f"{defaults['actual_revenue']:f}", defaults["actual_close_date"].isoformat()
        win = Action("win", "Win", "quotes.win", "primary", "expand", submit="Close the deal as won",
                     intro="The customer accepted: the deal is won and an order is created from this quote.",
                     inputs=[Input("actual_revenue", "Actual revenue", "money", revenue, True),
                             Input("actual_close_date", "Closed on", "date", closed, True)])
        revise = Action("revise", "Revise", "quotes.revise", submit="Revise",
                        intro="The quote is superseded by a new draft revision with the same lines.")
        actions += [win, revise, lose]
    email = email_action(quote)
    if email:
        actions.append(email)
    return actions


def quote_context(quote, opened=None, failed=None, notice=None):
    """The quote panel: validity and terms (editable while draft), lines, actions, related, timeline."""
    actions = quote_actions(quote)
    if failed and failed[0] == "activate" and "valid_until" in failed[1].fields:
        actions[0].inputs.append(Input("valid_until", "Valid until", "date",
                                       quote.valid_until.isoformat() if quote.valid_until else ""))
    return document_context(VIEW, quote, FIELDS, finish_actions(actions, opened, failed), notice)


VIEW = DocumentView(Quote, "quote", "quotes", "Quote", quote_context)


def _refreshed(quote):
    return refreshed_parts(VIEW, quote)


register_fields(bp, Quote, "quote", "quotes", FIELDS, on_saved=_refreshed)
register_lines(bp, Quote, "quote", "quotes", on_saved=_refreshed)


@bp.get("/quotes/<int:quote_id>")
def detail(quote_id):
    """The quote's panel; a full page when opened directly (?action= opens that action's form)."""
    quote = VIEW.load(quote_id)
    return render(VIEW.page, VIEW.fragment, **quote_context(quote, opened=request.args.get("action")))


@bp.post("/quotes/<int:quote_id>/activate")
def activate(quote_id):
    """Send the quote: it becomes active and read-only."""
    def step(quote, version, form):
        changed = quote.activate(g.user, version, **{k: v for k, v in form.items() if k == "valid_until"})
        return VIEW, quote, f"Quote {quote.display_number} {'is active (sent)' if changed else 'was already active'}."
    return run_action(VIEW, quote_id, "activate", step)


@bp.post("/quotes/<int:quote_id>/email")
def email(quote_id):
    """Email the sent quote's PDF to the customer."""
    return run_action(VIEW, quote_id, "email", email_step(VIEW))


@bp.post("/quotes/<int:quote_id>/revise")
def revise(quote_id):
    """Supersede the active quote with a new draft revision (shown next)."""
    def step(quote, version, form):
        draft = quote.revise(g.user, version)
        return VIEW, draft, f"Quote {draft.display_number} is a new draft."
    return run_action(VIEW, quote_id, "revise", step)


@bp.post("/quotes/<int:quote_id>/win")
def win(quote_id):
    """Accept the quote: the deal is closed as won and the order created."""
    def step(quote, version, form):
        inputs = {k: form.get(k, "") for k in ("actual_revenue", "actual_close_date")}
        changed = quote.win(g.user, version, **inputs)
        order = Order.get_or_none(Order.quote == quote.id)
        if changed and order is not None:
            return VIEW, quote, f"Deal won: order {order.display_number} created."
        return VIEW, quote, f"Quote {quote.display_number} was already won."
    return run_action(VIEW, quote_id, "win", step)


@bp.post("/quotes/<int:quote_id>/lose")
def lose(quote_id):
    """Mark the quote lost (the deal stays open)."""
    def step(quote, version, form):
        changed = quote.lose(g.user, version)
        return VIEW, quote, f"Quote {quote.display_number} {'is lost' if changed else 'was already lost'}."
    return run_action(VIEW, quote_id, "lose", step)


def quote_number(text):
    """The number in 'Q-00042', 'q42' or '42' (None when the text is not a quote number)."""
    match = re.fullmatch(r"(?:q-?)?0*(\d{1,9})(?:\s*rev\s*\d+)?", text)
    return int(match.group(1)) if match else None


def _quote_filters(args):
    query = (Quote.select_without("pdf").select_extend(Account.id, Account.name, Contact.id, Contact.name,
                                                       Opportunity.id, Opportunity.topic)
             .join(Account, JOIN.LEFT_OUTER, on=(Quote.account == Account.id)).switch(Quote)
             .join(Contact, JOIN.LEFT_OUTER, on=(Quote.contact == Contact.id)).switch(Quote)
             .join(Opportunity, on=(Quote.opportunity == Opportunity.id)))
    query = in_reach(query)
    text = text_filter(args)
    if text:
        like = text
        condition = fn.LOWER(Account.name).contains(like) | fn.LOWER(Contact.name).contains(like)
        number = quote_number(text)
        if number is not None:
            condition = condition | (Quote.number == number)
        query = query.where(condition)
    if args.get("status") in STATUSES:
        query = query.where(Quote.status == args["status"])
    return query


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"number": Quote.number, "customer": customer_sort(), "status": Quote.status,
            "valid": Quote.valid_until, "total": Quote.gross_total, "created": Quote.created_at}


@bp.get("/quotes")
def index():
    """All quotes, filtered by status and text (number, customer), sorted and paged."""
    from . import listing
    sorts = _sorts()
    page = listing.paginate(_quote_filters(request.args), sorts, "-created", tiebreak=Quote.id.desc(),
                             per_page=listing.PER_PAGE)
    return render("quotes/index.html", "quotes/_list.html", page=page, statuses=STATUSES, args=request.args)


EXPORT_COLUMNS = [
    ("Number", lambda r: r.display_number), ("Status", lambda r: r.status), ("Customer", lambda r: r.customer_name),
    ("Deal", lambda r: r.opportunity.topic), ("Valid until", lambda r: r.valid_until),
    ("Net", lambda r: r.net_total), ("Tax", lambda r: r.tax_total), ("Gross", lambda r: r.gross_total),
    ("Created", lambda r: r.created_at),
]


@bp.get("/quotes/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("quotes", _quote_filters(request.args), _sorts(), "-created", EXPORT_COLUMNS, tiebreak=Quote.id.desc())
