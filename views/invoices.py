"""Invoices: the detail panel (fields and lines while draft), issue / mark paid / cancel, and the list."""
from flask import Blueprint, g, request
from peewee import JOIN, fn

from models import Account, Contact, Invoice, Order
from models.base import today

from .common import in_reach, render
from .inline import Field, register_fields
from .lines import register_lines
from .quotes import (Action, DocumentView, Input, customer_sort, document_context, email_action, email_step,
                     finish_actions, refreshed_parts, run_action, text_filter)

bp = Blueprint("invoices", __name__)

FIELDS = [
    Field("payment_terms_days", "Payment terms (days)", "number"),
    Field("period_start", "Service period from", "date"),
    Field("period_end", "Service period to", "date"),
    Field("payment_terms", "Payment terms", "textarea", max_length=2000),
    Field("notes", "Notes", "textarea", max_length=5000),
]
STATUSES = ("draft", "issued", "paid", "canceled")


def invoice_actions(invoice):
    """The steps possible now for this invoice."""
    actions = []
    possible = invoice.possible_actions()
    if "issue" in possible:
        actions.append(Action("issue", "Issue", "invoices.issue", "primary", "inline", submit="Issue",
                              inputs=[Input("issue_date", "Invoice date", "date", Invoice.next_issue_date().isoformat(),
                                            True)]))
    if "paid" in possible:
        actions.append(Action("paid", "Mark paid", "invoices.mark_paid", "primary", "inline", submit="Mark paid",
                              inputs=[Input("paid_on", "Paid on", "date", today().isoformat(), True)]))
    if "cancel" in possible:
        keeps = (" It keeps its number, and a credit note that voids it is issued (numbered, frozen, "
                 "with the reason below)." if invoice.status == "issued" else "")
        actions.append(Action("cancel", "Cancel invoice", "invoices.cancel", "danger", "expand",
                              submit="Cancel the invoice", intro=f"The invoice is canceled.{keeps}",
                              inputs=[Input("reason", "Reason", "textarea", "", True)]))
    email = email_action(invoice)
    if email:
        actions.append(email)
    return actions


def invoice_context(invoice, opened=None, failed=None, notice=None):
    """The invoice panel: number and dates, terms (editable while draft), lines, actions, related, timeline."""
    return document_context(VIEW, invoice, FIELDS, finish_actions(invoice_actions(invoice), opened, failed), notice)


VIEW = DocumentView(Invoice, "invoice", "invoices", "Invoice", invoice_context)


def _refreshed(invoice):
    return refreshed_parts(VIEW, invoice)


register_fields(bp, Invoice, "invoice", "invoices", FIELDS, on_saved=_refreshed)
register_lines(bp, Invoice, "invoice", "invoices", on_saved=_refreshed)


@bp.get("/invoices/<int:invoice_id>")
def detail(invoice_id):
    """The invoice's panel; a full page when opened directly (?action= opens that action's form)."""
    invoice = VIEW.load(invoice_id)
    return render(VIEW.page, VIEW.fragment, **invoice_context(invoice, opened=request.args.get("action")))


@bp.post("/invoices/<int:invoice_id>/issue")
def issue(invoice_id):
    """Issue the draft: number allocated, document frozen, the deal's card follows."""
    def step(invoice, version, form):
        changed = invoice.issue(g.user, version, issue_date=form.get("issue_date") or None)
        invoice = VIEW.load(invoice.id)
        return VIEW, invoice, (f"Invoice {invoice.display_number} is issued." if changed
                               else f"Invoice {invoice.display_number} was already issued.")
    return run_action(VIEW, invoice_id, "issue", step)


@bp.post("/invoices/<int:invoice_id>/paid")
def mark_paid(invoice_id):
    """Record the payment on a date (default today)."""
    def step(invoice, version, form):
        changed = invoice.mark_paid(g.user, version, paid_on=form.get("paid_on") or None)
        return VIEW, invoice, (f"Invoice {invoice.display_number} is paid." if changed
                               else f"Invoice {invoice.display_number} was already paid.")
    return run_action(VIEW, invoice_id, "paid", step)


@bp.post("/invoices/<int:invoice_id>/email")
def email(invoice_id):
    """Email the issued invoice's PDF (a canceled one's credit note) to the customer."""
    return run_action(VIEW, invoice_id, "email", email_step(VIEW))


@bp.post("/invoices/<int:invoice_id>/cancel")
def cancel(invoice_id):
    """Cancel the invoice with a reason (an issued one keeps its number)."""
    def step(invoice, version, form):
        changed = invoice.cancel(g.user, version, reason=form.get("reason", ""))
        return VIEW, invoice, (f"Invoice {invoice.display_number} is canceled." if changed
                               else f"Invoice {invoice.display_number} was already canceled.")
    return run_action(VIEW, invoice_id, "cancel", step)


def _invoice_filters(args):
    query = (Invoice.select_without("pdf").select_extend(Account.id, Account.name, Contact.id, Contact.name,
                                                         Order.id, Order.number)
             .join(Account, JOIN.LEFT_OUTER, on=(Invoice.account == Account.id)).switch(Invoice)
             .join(Contact, JOIN.LEFT_OUTER, on=(Invoice.contact == Contact.id)).switch(Invoice)
             .join(Order, on=(Invoice.order == Order.id)))
    query = in_reach(query)
    text = text_filter(args)
    if text:
        like = text
        query = query.where(fn.LOWER(Invoice.number).contains(like) | fn.LOWER(Account.name).contains(like)
                            | fn.LOWER(Contact.name).contains(like))
    status = args.get("status")
    if status in STATUSES:
        query = query.where(Invoice.status == status)
    elif status == "overdue":
        query = query.where((Invoice.status == "issued") & (Invoice.due_date < today()))
    return query


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"number": Invoice.number, "customer": customer_sort(), "status": Invoice.status,
            "issued": Invoice.issue_date, "due": Invoice.due_date, "total": Invoice.gross_total,
            "created": Invoice.created_at}


@bp.get("/invoices")
def index():
    """All invoices, filtered by status, overdue and text (number, customer), sorted and paged."""
    from . import listing
    sorts = _sorts()
    page = listing.paginate(_invoice_filters(request.args), sorts, "-created", tiebreak=Invoice.id.desc(),
                             per_page=listing.PER_PAGE)
    return _list_page(page, request.args)


def _list_page(page, args, status=200, reminder_results=None):
    from models import Settings, mail
    overdue = args.get("status") == "overdue"
    return render("invoices/index.html", "invoices/_list.html", status, page=page, statuses=STATUSES, args=args,
                  today=today(), reminded=mail.reminder_counts([i.id for i in page.items]),
                  reminders_unavailable=mail.unavailable_reason(Settings.load(logo=False)) if overdue else None,
                  reminder_results=reminder_results, reminder_pause=mail.REMINDER_PAUSE_DAYS,
                  reminder_limit=mail.REMINDER_RUN_LIMIT)


@bp.post("/invoices/reminders")
def send_reminders():
    """The overdue list's "Send payment reminders": every overdue invoice the user may change gets its reminder
    (up to 10 a run), unless reminded within a week or without an address; the list comes back with what
    happened (a plain form: the outcome as a message, then the overdue list)."""
    from flask import flash, redirect, url_for
    from models import DomainError, mail
    from models.access import visible
    from . import listing
    from .common import error_response, is_htmx
    invoices = mail.overdue_for_reminders(visible(Invoice, g.user, write=True, query=Invoice.select_without("pdf")))
    try:
        results = mail.send_reminders(g.user, invoices)
    except DomainError as exc:
        return error_response(exc.status, exc)
    if not is_htmx():
        sent = [invoice.display_number for invoice, outcome, _ in results if outcome == "sent"]
        flash(f"{len(sent)} of {len(results)} reminders sent" + (f": {', '.join(sent)}." if sent else "."), "info")
        return redirect(url_for("invoices.index", status="overdue"), 303)
    args = {"status": "overdue"}
    page = listing.paginate(_invoice_filters(args), _sorts(), "-created", args=args, tiebreak=Invoice.id.desc(),
                            per_page=listing.PER_PAGE)
    return _list_page(page, args, reminder_results=results)


EXPORT_COLUMNS = [
    ("Number", lambda r: r.display_number), ("Status", lambda r: r.status), ("Payment", lambda r: r.payment_state),
    ("Customer", lambda r: r.customer_name), ("Order", lambda r: r.order.display_number),
    ("Issue date", lambda r: r.issue_date), ("Due date", lambda r: r.due_date), ("Paid on", lambda r: r.paid_on),
    ("Net", lambda r: r.net_total), ("Tax", lambda r: r.tax_total), ("Gross", lambda r: r.gross_total),
    ("Last reminder", lambda r: r.reminded_at),
]


@bp.get("/invoices/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("invoices", _invoice_filters(request.args), _sorts(), "-created", EXPORT_COLUMNS, tiebreak=Invoice.id.desc())
