"""Products: the catalog list, the create form, the detail panel, and the search used by the line editor."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from peewee import fn

from models import DomainError, Invoice, Opportunity, Product, Quote, StaleVersion, ValidationError
from models.catalog import SUPPLIES, UNITS

from .accounts import refreshed_parts
from .common import is_htmx, load_record, render, url_record
from .inline import Field, register_fields
from .lines import product_search

bp = Blueprint("products", __name__)

TARGET_MODELS = {"opportunity": Opportunity, "quote": Quote, "invoice": Invoice}
LINE_TARGETS = {"opportunity": ("opportunities", "opportunities.line_add"),
                "quote": ("quotes", "quotes.line_add"), "invoice": ("invoices", "invoices.line_add")}

FIELDS = [
    Field("sku", "SKU", max_length=40),
    Field("name", "Name"),
    Field("unit", "Unit", "select", [(u, u) for u in UNITS]),
    Field("list_price", "List price", "money"),
    Field("tax_rate", "Tax rate %", "number"),
    Field("tax_exemption", "VAT exemption"),
    Field("supply", "Goods or service", "select", SUPPLIES),
    Field("active", "Active", "checkbox"),
    Field("description", "Description", "textarea", max_length=5000),
]
CREATE_FIELDS = ("sku", "name", "unit", "list_price", "tax_rate", "tax_exemption", "supply", "description")


register_fields(bp, Product, "product", "products", FIELDS,
                on_saved=lambda product: refreshed_parts(product, "products/_head.html"))


@bp.get("/products/search")
def search():
    """Active products matching the text, each with a button that adds it to the target document."""
    kind, _, raw_id = (request.args.get("target") or "").partition(":")
    if kind not in LINE_TARGETS or not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 12:
        abort(400)
    if load_record(TARGET_MODELS[kind], int(raw_id), write=False) is None:
        abort(404)
    return render_template("products/_search_results.html", products=product_search(request.args.get("q")),
                           kind=kind, document_id=int(raw_id), add_endpoint=LINE_TARGETS[kind][1])


def panel_context(product, error=None):
    """Fields, where the product is in play (open opportunity lines) and the timeline."""
    from models import HistoryEvent
    lines = list(product.open_opportunity_lines().limit(200))
    deals = list({line.document.id: line.document for line in lines}.values())
    return {"record": product, "product": product, "fields": FIELDS, "kind": "product", "endpoint": "products",
            "open_line_count": product.open_opportunity_lines().count(), "deals": deals[:20],
            "events": list(HistoryEvent.about(product).limit(100)), "activities": [], "error": error}


def _product_or_404(product_id):
    return url_record(Product)


@bp.get("/products/<int:product_id>")
def detail(product_id):
    """The product's panel; a full page when opened directly."""
    return render("products/detail.html", "products/_panel.html", **panel_context(_product_or_404(product_id)))


@bp.post("/products/<int:product_id>/active")
def set_active(product_id):
    """Deactivate or reactivate the product (a stale version is refused with 409 and the fresh panel)."""
    product = _product_or_404(product_id)
    try:
        product.set_active(g.user, request.form.get("active") == "1", expected_version=request.form.get("version"))
    except StaleVersion as exc:
        return render("products/detail.html", "products/_panel.html", 409,
                      **panel_context(Product.get_by_id(product.id), error=exc.message))
    except DomainError as exc:
        return render("products/detail.html", "products/_panel.html", exc.status,
                      **panel_context(Product.get_by_id(product.id), error=exc.message))
    fresh = Product.get_by_id(product.id)
    if not is_htmx():
        flash(f"Product {fresh.sku} is now {'active' if fresh.active else 'inactive'}.", "info")
        return redirect(url_for("products.detail", product_id=fresh.id))
    return render("products/detail.html", "products/_panel.html", **panel_context(fresh))


@bp.get("/products/new")
def new():
    """The form for a new product."""
    return render("products/new.html", "products/_form.html", errors={},
                  values={"unit": "piece", "tax_rate": "19", "supply": "services"}, units=[(u, u) for u in UNITS],
                  supplies=SUPPLIES)


@bp.post("/products")
def create():
    """Create a product (SKU unique; the model validates); the form again with messages on refusal."""
    values = {name: request.form[name] for name in CREATE_FIELDS if name in request.form}
    try:
        product = Product.create_product(g.user, **values)
    except ValidationError as exc:
        return render("products/new.html", "products/_form.html", 422, errors=exc.fields, values=values,
                      message=exc.message, units=[(u, u) for u in UNITS], supplies=SUPPLIES)
    flash(f"Product {product.sku} {product.name} created.", "info")
    return redirect(url_for("products.detail", product_id=product.id))


def _product_filters(args):
    query = Product.select()
    text = (args.get("q") or "").replace("\x00", "").strip()[:100]
    if text:
        query = query.where(Product.sku.contains(text) | Product.name.contains(text)
                            | Product.description.contains(text))
    status = args.get("status", "active")
    if status == "active":
        query = query.where(Product.active == True)  # noqa: E712
    elif status == "inactive":
        query = query.where(Product.active == False)  # noqa: E712
    return query


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"sku": Product.sku, "name": fn.LOWER(Product.name), "unit": Product.unit, "price": Product.list_price,
            "tax": Product.tax_rate, "created": Product.created_at}


@bp.get("/products")
def index():
    """The catalog, filtered by text and active flag, sorted and paged; the filters live in the URL."""
    from .listing import paginate
    sorts = _sorts()
    page = paginate(_product_filters(request.args), sorts, "name", tiebreak=Product.id)
    return render("products/index.html", "products/_list.html", page=page, args=request.args)


EXPORT_COLUMNS = [
    ("SKU", lambda r: r.sku), ("Name", lambda r: r.name), ("Description", lambda r: r.description),
    ("Unit", lambda r: r.unit), ("List price", lambda r: r.list_price), ("Tax rate %", lambda r: r.tax_rate),
    ("VAT exemption", lambda r: r.tax_exemption), ("Goods or service", lambda r: r.supply),
    ("Active", lambda r: r.active), ("Created", lambda r: r.created_at),
]


@bp.get("/products/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("products", _product_filters(request.args), _sorts(), "name", EXPORT_COLUMNS, tiebreak=Product.id)
