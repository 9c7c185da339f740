"""Orders: the detail panel (frozen lines), fulfil / cancel / create the invoice, and the list."""
import re

from flask import Blueprint, g, request
from peewee import JOIN, fn

from models import Account, Contact, Opportunity, Order

from . import invoices
from .common import in_reach, render
from .quotes import (Action, DocumentView, Input, customer_sort, document_context, finish_actions, run_action,
                     text_filter)

bp = Blueprint("orders", __name__)

STATUSES = ("open", "fulfilled", "canceled")


def order_actions(order):
    """The steps possible now for this order."""
    actions = []
    possible = order.possible_actions()
    if "fulfil" in possible:
        actions.append(Action("fulfil", "Fulfil", "orders.fulfil", "primary", submit="Fulfil",
                              intro="The order is delivered."))
    if "invoice" in possible:
        actions.append(Action("invoice", "Create invoice", "orders.create_invoice", submit="Create invoice",
                              intro="A draft invoice is made from the order's lines."))
    if "cancel" in possible:
        actions.append(Action("cancel", "Cancel order", "orders.cancel", "danger", "expand", submit="Cancel the order",
                              intro="The order is canceled and the deal leaves the board.",
                              inputs=[Input("reason", "Reason", "textarea", "", True)]))
    return actions


def order_context(order, opened=None, failed=None, notice=None):
    """The order panel: dates, frozen lines and totals, actions, related documents, timeline."""
    return document_context(VIEW, order, [], finish_actions(order_actions(order), opened, failed), notice)


VIEW = DocumentView(Order, "order", "orders", "Order", order_context)


@bp.get("/orders/<int:order_id>")
def detail(order_id):
    """The order's panel; a full page when opened directly (?action= opens that action's form)."""
    order = VIEW.load(order_id)
    return render(VIEW.page, VIEW.fragment, **order_context(order, opened=request.args.get("action")))


@bp.post("/orders/<int:order_id>/fulfil")
def fulfil(order_id):
    """Mark the order delivered; the deal's card follows its documents."""
    def step(order, version, form):
        changed = order.fulfil_and_sync(g.user, version)
        return VIEW, order, f"Order {order.display_number} {'is fulfilled' if changed else 'was already fulfilled'}."
    return run_action(VIEW, order_id, "fulfil", step)


@bp.post("/orders/<int:order_id>/cancel")
def cancel(order_id):
    """Cancel the open order with a reason."""
    def step(order, version, form):
        changed = order.cancel(g.user, version, reason=form.get("reason", ""))
        return VIEW, order, f"Order {order.display_number} {'is canceled' if changed else 'was already canceled'}."
    return run_action(VIEW, order_id, "cancel", step)


@bp.post("/orders/<int:order_id>/invoice")
def create_invoice(order_id):
    """Draft the order's invoice and show it."""
    def step(order, version, form):
        invoice = order.create_invoice(g.user, version)
        return invoices.VIEW, invoice, f"Draft invoice created from order {order.display_number}."
    return run_action(VIEW, order_id, "invoice", step)


def _order_filters(args):
    query = (Order.select(Order, Account.id, Account.name, Contact.id, Contact.name, Opportunity.id, Opportunity.topic)
             .join(Account, JOIN.LEFT_OUTER, on=(Order.account == Account.id)).switch(Order)
             .join(Contact, JOIN.LEFT_OUTER, on=(Order.contact == Contact.id)).switch(Order)
             .join(Opportunity, on=(Order.opportunity == Opportunity.id)))
    query = in_reach(query)
    text = text_filter(args)
    if text:
        like = text
        condition = fn.LOWER(Account.name).contains(like) | fn.LOWER(Contact.name).contains(like)
        match = re.fullmatch(r"(?:so-?)?0*(\d{1,9})", text)
        if match:
            condition = condition | (Order.number == int(match.group(1)))
        query = query.where(condition)
    if args.get("status") in STATUSES:
        query = query.where(Order.status == args["status"])
    return query


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"number": Order.number, "customer": customer_sort(), "status": Order.status, "date": Order.order_date,
            "total": Order.gross_total}


@bp.get("/orders")
def index():
    """All orders, filtered by status (and text), sorted and paged."""
    from . import listing
    sorts = _sorts()
    page = listing.paginate(_order_filters(request.args), sorts, "-number", tiebreak=Order.id.desc(),
                             per_page=listing.PER_PAGE)
    return render("orders/index.html", "orders/_list.html", page=page, statuses=STATUSES, args=request.args)


EXPORT_COLUMNS = [
    ("Number", lambda r: r.display_number), ("Status", lambda r: r.status), ("Customer", lambda r: r.customer_name),
    ("Deal", lambda r: r.opportunity.topic), ("Order date", lambda r: r.order_date),
    ("Net", lambda r: r.net_total), ("Tax", lambda r: r.tax_total), ("Gross", lambda r: r.gross_total),
]


@bp.get("/orders/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("orders", _order_filters(request.args), _sorts(), "-number", EXPORT_COLUMNS, tiebreak=Order.id.desc())
