"""The one place that decides full page vs fragment and handles htmx headers; domain-error handling."""
from urllib.parse import parse_qs, urlparse

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_htmx import HTMX

from models.errors import DomainError

from .security import CSRFError, CSRFProtect

htmx = HTMX()
csrf = CSRFProtect()


def render(page_template, fragment_template, status=200, toast=None, push_url=None, retarget=None, reswap=None,
           **context):
    """Render the fragment for an htmx request and the page (which includes it) otherwise."""
    partial = bool(htmx) and not htmx.boosted and not htmx.history_restore_request and fragment_template is not None
    body = render_template(fragment_template if partial else page_template, **context)
    if partial and toast:
        body += render_template("_toast.html", toast=toast)
    response = make_response(body, status)
    response.headers["Vary"] = "HX-Request"
    if htmx:
        if push_url:
            response.headers["HX-Push-Url"] = push_url
        if retarget:
            response.headers["HX-Retarget"] = retarget
        if reswap:
            response.headers["HX-Reswap"] = reswap
    return response


def is_htmx():
    return bool(htmx)


def render_fragment(body, status=200, toast=None, reswap="innerHTML", push_url=None):
    """An htmx-only answer made of already rendered (often out-of-band) pieces, plus a toast."""
    if toast:
        body += render_template("_toast.html", toast=toast)
    response = make_response(body, status)
    response.headers["Vary"] = "HX-Request"
    response.headers["HX-Reswap"] = reswap
    if push_url:
        response.headers["HX-Push-Url"] = push_url
    return response


def from_board():
    """False when an htmx request says it comes from another page than the board (whose cards and
    headers would then have nowhere to go); True otherwise."""
    current = htmx.current_url if htmx else None
    return not current or urlparse(current).path.rstrip("/").endswith("/board")


def page_args():
    """The query arguments of the page an htmx request came from (HX-Current-URL), else of this request."""
    current = htmx.current_url if htmx else None
    if current:
        return {k: v[-1] for k, v in parse_qs(urlparse(current).query).items()}
    return request.args


def safe_next(target, default="board.board"):
    """A local path to go back to (never another host)."""
    if target:
        parts = urlparse(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for(default)


def error_response(status, error):
    """An error page, or for htmx an out-of-band toast (nothing else on the page is swapped)."""
    return render("errors/error.html", "errors/_toast.html", status, error=error, reswap="none")


def _page_of_url_record():
    """The page of the record the URL names (where a refused link without a referrer goes back to), or None."""
    from . import record_url
    pages = [record_url(record) for record in (getattr(g, "url_records", None) or {}).values()]
    return next(filter(None, pages), None)


def register_error_handlers(app):
    """Domain errors: a 422/409 fragment for htmx, else flash + redirect; plus 400/404/405/500 pages."""

    @app.errorhandler(DomainError)
    def domain_error(exc):
        if htmx or exc.status in (403, 404):
            return error_response(exc.status, exc)
        flash(exc.message, "error")
        for field, message in exc.fields.items():
            flash(f"{field.replace('_', ' ').capitalize()}: {message}", "error")
        return redirect(safe_next(request.referrer and urlparse(request.referrer).path or _page_of_url_record()))

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(400, DomainError("The form's security token is missing or expired: "
                                               "reload the page and try again."))

    @app.errorhandler(400)
    def bad_request(exc):
        return error_response(400, DomainError("The request could not be understood."))

    @app.errorhandler(413)
    def too_large(exc):
        return error_response(413, DomainError("The upload is too large."))

    @app.errorhandler(403)
    def forbidden(exc):
        return error_response(403, DomainError("You may not do this."))

    @app.errorhandler(404)
    def not_found(exc):
        return error_response(404, DomainError("There is nothing at this address."))

    @app.errorhandler(405)
    def method_not_allowed(exc):
        return error_response(405, DomainError("This address does not accept that kind of request."))

    @app.errorhandler(500)
    def server_error(exc):
        return error_response(500, DomainError("Something went wrong on our side. Nothing was saved."))


# URL arguments that name a record, and the model they name (record_id: the blueprint's model).
RECORD_ARGS = {"lead_id": "Lead", "opportunity_id": "Opportunity", "quote_id": "Quote", "order_id": "Order",
               "invoice_id": "Invoice", "account_id": "Account", "contact_id": "Contact", "product_id": "Product",
               "activity_id": "Activity"}
BLUEPRINT_MODELS = {"leads": "Lead", "opportunities": "Opportunity", "quotes": "Quote", "orders": "Order",
                    "invoices": "Invoice", "accounts": "Account", "contacts": "Contact", "products": "Product"}
CARD_KINDS = {"lead": "Lead", "opportunity": "Opportunity"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def load_url_records():
    """Before every request: each record named in the URL is loaded through the access scope of the
    signed-in user (models/access.py) — unknown or out of reach: 404; readable but not changeable
    by this user on a POST: 403. Views take their records from `url_record()`, never by id."""
    import models
    from models.access import load
    g.url_records = {}
    args = request.view_args or {}
    for name, value in args.items():
        model_name = RECORD_ARGS.get(name)
        if name == "record_id":
            model_name = CARD_KINDS.get(args.get("kind")) if "kind" in args else BLUEPRINT_MODELS.get(request.blueprint)
            if model_name is None and "kind" in args:
                abort(404)
        if model_name is None:
            continue
        record = load(getattr(models, model_name), value, g.user, write=request.method not in SAFE_METHODS)
        if record is None:
            abort(404)
        g.url_records[name] = record


def url_record(name_or_model):
    """The record named by a URL argument (its name, or the record's model), loaded and
    access-checked before the view ran."""
    if isinstance(name_or_model, str):
        return g.url_records[name_or_model]
    for record in g.url_records.values():
        if isinstance(record, name_or_model):
            return record
    abort(404)


def in_reach(query, model=None):
    """`query` restricted to the rows of its model (or `model`) the signed-in user may see."""
    from models.access import visible_where
    condition = visible_where(model or query.model, g.user)
    return query if condition is None else query.where(condition)


def load_record(model, pk, write=None, select=None):
    """One record by id within the user's reach (None when out of reach or unknown)."""
    from models.access import load
    if write is None:
        write = request.method not in SAFE_METHODS
    return load(model, pk, g.user, write=write, select=select)


def parse_record_key(key, models):
    """'lead:12' -> (Lead, 12) when the kind is one of `models` and the id a plain number; else None."""
    kind, _, raw_id = (key or "").partition(":")
    model = models.get(kind)
    if model is None or not (raw_id.isascii() and raw_id.isdigit()) or len(raw_id) > 12:
        return None
    return model, int(raw_id)


def owner_choices():
    """(id, name) of the active users whose records the signed-in user can see, for owner filters."""
    from models.access import visible_owners
    return [(u.id, u.name) for u in visible_owners(g.user)]


def assignable_choices():
    """(id, name) of the users the signed-in user may make owner of a record, for owner fields."""
    from models.access import assignable_owners
    return [(u.id, u.name) for u in assignable_owners(g.user)]


def current_settings():
    """The company settings without the logo's bytes, loaded once per request."""
    if "settings" not in g:
        from models import Settings
        g.settings = Settings.load(logo=False)
    return g.settings
