"""Company settings: the block on documents, numbers and days; managers and admins may change them."""
from flask import Blueprint, abort, current_app, flash, g, make_response, redirect, request, url_for

from models import DomainError, Settings, ValidationError
from models.money import CURRENCY_SYMBOLS
from models.mail import PLACEHOLDERS, email_text
from models.settings import EMAIL_TEXTS, LOGO_MAX_BYTES, SETTINGS_DAYS, SETTINGS_LIMITS

from .common import error_response, render

bp = Blueprint("settings", __name__)

EDITOR_ROLES = ("manager", "admin")
FIELD_LABELS = {"company_name": "Company name", "address": "Address", "vat_id": "VAT id", "tax_number": "Tax number",
                "company_register": "Company register", "legal_info": "Legal information", "email": "Email",
                "phone": "Phone", "bank_details": "Bank details", "logo": "Logo", "currency": "Currency",
                "quote_validity_days": "Quotes valid for", "payment_terms_days": "Payment due after",
                "payment_terms_text": "Payment terms text", "rot_days_develop": "Rotting in Develop",
                "rot_days_propose": "Rotting in Propose", "rot_days_close": "Rotting in Close",
                "email_quote_text": "Email with a quote", "email_invoice_text": "Email with an invoice",
                "email_reminder_text": "Payment reminder", "email_credit_text": "Email with a credit note"}
FORM_FIELDS = ("company_name", "address", "vat_id", "tax_number", "company_register", "legal_info", "email", "phone",
               "bank_details",
               "payment_terms_text") + tuple(SETTINGS_DAYS) + EMAIL_TEXTS  # the currency is the app's CURRENCY


def _may_edit():
    return g.user is not None and g.user.role in EDITOR_ROLES


def _refuse_unless_editor():
    if not _may_edit():
        return error_response(403, DomainError("Only a manager or an admin can change the company settings; "
                                             "ask one of them to make this change."))
    return None


def _page(settings, status=200, errors=None, values=None, message=None):
    if values is None:  # an email text the company has not set shows the built-in one, to edit from
        values = {name: email_text(settings, name) if name in EMAIL_TEXTS else getattr(settings, name)
                  for name in FORM_FIELDS}
    else:
        values = dict({name: email_text(settings, name) for name in EMAIL_TEXTS}, **values)
    return render("settings/index.html", "settings/_form.html", status, settings=settings, values=values,
                  errors=errors or {}, message=message, field_labels=FIELD_LABELS, may_edit=_may_edit(),
                  limits=SETTINGS_LIMITS,
                  days=SETTINGS_DAYS, logo_max_kb=LOGO_MAX_BYTES // 1024, placeholders=PLACEHOLDERS,
                  email_text=email_text,
                  display_currency=current_app.config["CURRENCY"], symbols=CURRENCY_SYMBOLS)


def _load():
    return Settings.load()


@bp.get("/settings")
def index():
    """The company settings; read-only for sellers."""
    return _page(_load())


@bp.post("/settings")
def save():
    """Save the settings form (and an uploaded logo); 422 with messages at the fields, nothing saved on refusal."""
    refused = _refuse_unless_editor()
    if refused:
        return refused
    settings = _load()
    values = {name: request.form.get(name, "") for name in FORM_FIELDS
              if name in request.form or name not in EMAIL_TEXTS}  # an email text left out is kept
    upload = request.files.get("logo")
    logo = None
    if upload is not None and upload.filename:
        logo = upload.stream.read(LOGO_MAX_BYTES + 1)
    try:
        changed = settings.save_changes(g.user, values, logo=logo, remove_logo=request.form.get("remove_logo") == "1")
    except ValidationError as exc:
        return _page(settings, 422, errors=exc.fields, values=values, message=exc.message)
    flash("Settings saved." if changed else "Nothing changed.", "info")
    return redirect(url_for("settings.index"))


@bp.post("/settings/logo/delete")
def remove_logo():
    """Remove the company logo."""
    refused = _refuse_unless_editor()
    if refused:
        return refused
    changed = _load().save_changes(g.user, {}, remove_logo=True)
    flash("Logo removed." if changed else "There was no logo to remove.", "info")
    return redirect(url_for("settings.index"))


@bp.get("/settings/logo")
def logo():
    """The stored logo with its stored type."""
    return logo_response(_load())


def logo_response(settings):
    """The logo's bytes with its stored type (scripts in SVGs cannot run: sandboxed, no sources allowed)."""
    if settings.logo is None:
        abort(404)
    etag = settings.logo_etag
    if request.if_none_match and etag in request.if_none_match:
        response = make_response("", 304)
    else:
        response = make_response(bytes(settings.logo))
        response.headers["Content-Type"] = settings.logo_mime
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response
