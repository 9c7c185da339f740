"""Products: the catalog search used by the line editor."""
from flask import Blueprint, abort, render_template, request

from .lines import product_search

bp = Blueprint("products", __name__)

LINE_TARGETS = {"opportunity": ("opportunities", "opportunities.line_add"),
                "quote": ("quotes", "quotes.line_add"), "invoice": ("invoices", "invoices.line_add")}


@bp.get("/products/search")
def search():
    """Active products matching the text, each with a button that adds it to the target document."""
    kind, _, raw_id = (request.args.get("target") or "").partition(":")
    if kind not in LINE_TARGETS or not raw_id.isdigit():
        abort(400)
    return render_template("products/_search_results.html", products=product_search(request.args.get("q")),
                           kind=kind, document_id=int(raw_id), add_endpoint=LINE_TARGETS[kind][1])
