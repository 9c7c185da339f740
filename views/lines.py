"""The line editor shared by opportunities, draft quotes and draft invoices.

register_lines() adds routes to a resource's blueprint; every change goes through the model's
add_line / update_line / remove_line / move_line and answers with the whole line table (totals
and tax breakdown recomputed by the server).
"""
from flask import abort, flash, g, redirect, render_template, request, url_for

from models import DomainError, Product, StaleVersion
from models.catalog import SUPPLIES, UNITS
from models.lines import totals_of

from .common import is_htmx, render_fragment, url_record

LINE_INPUTS = ("product", "description", "quantity", "unit", "unit_price", "discount_pct", "tax_rate",
               "tax_exemption", "supply")


def lines_context(document, kind, endpoint, error=None, error_line=None):
    """What the line table needs: rows, totals, whether it is editable, the catalog."""
    lines = document.line_rows()
    locked = document.lines_locked_reason()
    return {"document": document, "kind": kind, "endpoint": endpoint, "lines": lines, "totals": totals_of(lines),
            "editable": locked is None,
            "locked_reason": locked, "units": UNITS, "supplies": SUPPLIES, "line_error": error,
            "error_line": error_line}


def register_lines(bp, model, kind, prefix, on_saved=None):
    """Add the line-editor routes for `model` (a HasLines document) to blueprint `bp`."""

    def load(record_id):
        return url_record(model)

    def answer(record, status=200, error=None, error_line=None):
        fresh = model.get_by_id(record.id)
        if not is_htmx():
            if error:
                details = error.values() if isinstance(error, dict) else [error]
                for message in details:
                    flash(f"The line was not saved: {message}", "error")
            return redirect(url_for(f"{bp.name}.detail", **{f"{kind}_id": fresh.id}))
        body = render_template("_lines.html", **lines_context(fresh, kind, bp.name, error, error_line))
        body += (f'<input type="hidden" id="version-{kind}-{fresh.id}" name="version" value="{int(fresh.version)}" '
                 f'hx-swap-oob="true">')
        if on_saved is not None and status == 200:
            body += on_saved(fresh)
        return render_fragment(body, status, reswap="outerHTML")

    def run(record, action):
        try:
            action()
        except StaleVersion as exc:
            return answer(record, 409, exc.message)
        except DomainError as exc:
            return answer(record, exc.status, exc.fields or exc.message, request.view_args.get("line_id"))
        return answer(record)

    def data():
        return {k: request.form[k] for k in LINE_INPUTS if k in request.form}

    def add(record_id):
        """Add a product or free-text line."""
        record = load(record_id)
        return run(record, lambda: record.add_line(g.user, request.form.get("version"), **data()))

    def update(record_id, line_id):
        """Change a line's quantity, price, discount, tax or text."""
        record = load(record_id)
        return run(record, lambda: record.update_line(g.user, line_id, request.form.get("version"), **data()))

    def remove(record_id, line_id):
        """Remove a line."""
        record = load(record_id)
        return run(record, lambda: record.remove_line(g.user, line_id, request.form.get("version")))

    def reorder(record_id, line_id, direction):
        """Move a line up or down."""
        if direction not in ("up", "down"):
            abort(404)
        record = load(record_id)
        return run(record, lambda: record.move_line(g.user, line_id, direction, request.form.get("version")))

    bp.add_url_rule(f"/{prefix}/<int:record_id>/lines", "line_add", add, methods=["POST"])
    bp.add_url_rule(f"/{prefix}/<int:record_id>/lines/<int:line_id>", "line_update", update, methods=["POST"])
    bp.add_url_rule(f"/{prefix}/<int:record_id>/lines/<int:line_id>/delete", "line_remove", remove, methods=["POST"])
    bp.add_url_rule(f"/{prefix}/<int:record_id>/lines/<int:line_id>/<direction>", "line_move", reorder,
                    methods=["POST"])


def product_search(query, limit=8):
    """Active products whose SKU or name contains the text (for search-as-you-type)."""
    from peewee import fn
    text = (query or "").strip().lower()[:100]
    products = Product.select().where(Product.active == True)  # noqa: E712
    if text:
        like = text
        products = products.where(fn.LOWER(Product.name).contains(like) | fn.LOWER(Product.sku).contains(like))
    return list(products.order_by(Product.name).limit(limit))
