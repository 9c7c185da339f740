"""Web-to-lead: admins manage capture forms (/admin/forms); visitors fill them in at /f/<key>."""
from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, url_for

from models import Settings, Team, User, ValidationError
from models.access import require_admin
from models.capture import ALWAYS, FIELDS, HONEYPOT, CaptureForm, Throttled
from models.lead import SOURCES, TIMEFRAMES

from .common import csrf, current_settings, render

bp = Blueprint("capture", __name__, url_prefix="/admin/forms")
public = Blueprint("public", __name__)
csrf.exempt_blueprint("public")  # websites post the embedded form from their own pages

FORM_INPUTS = ("name", "thank_you", "source", "campaign", "owner", "team", "active")


@bp.before_request
def admins_only():
    require_admin(g.user)


def _definition(form):
    data = {k: (form.get(k) or "") for k in FORM_INPUTS}
    data["active"] = form.get("active") == "1"
    data["fields"] = form.getlist("fields")
    data["required"] = form.getlist("required")
    return data


def _choices():
    return {"users": list(User.select().where(User.active == True).order_by(User.name)),  # noqa: E712
            "teams": list(Team.select().order_by(Team.name)), "sources": SOURCES, "all_fields": FIELDS,
            "always": ALWAYS}


@bp.get("")
def index():
    """Every capture form with its assignment, tags and counts; a form to add one."""
    forms = list(CaptureForm.select().order_by(CaptureForm.active.desc(), CaptureForm.name))
    return render("capture/index.html", None, forms=forms, errors={}, values={}, **_choices())


@bp.post("")
def create():
    data = _definition(request.form)
    data["active"] = True
    try:
        form = CaptureForm.create_form(g.user, **data)
    except ValidationError as exc:
        forms = list(CaptureForm.select().order_by(CaptureForm.active.desc(), CaptureForm.name))
        return render("capture/index.html", None, 422, forms=forms, errors=exc.fields, values=data, **_choices())
    flash(f"Form “{form.name}” created: put its link or snippet on your website.", "info")
    return redirect(url_for("capture.edit", form_id=form.id))


def _form(form_id):
    form = CaptureForm.get_or_none(CaptureForm.id == form_id)
    if form is None:
        abort(404)
    return form


def snippet(form, action_url):
    """The HTML to paste into a website: the form's fields as a plain form posting to `action_url`."""
    return render_template("capture/snippet.html", form=form, action_url=action_url, labels=FIELDS,
                           timeframes=TIMEFRAMES, honeypot=HONEYPOT).strip()


def _edit_page(form, status=200, errors=None, values=None):
    public_url = url_for("public.form", key=form.key, _external=True)
    return render("capture/edit.html", None, status, form=form, errors=errors or {}, values=values,
                  public_url=public_url, snippet=snippet(form, public_url), **_choices())


@bp.get("/<int:form_id>")
def edit(form_id):
    """One form: its settings, public link and the HTML snippet for the website."""
    return _edit_page(_form(form_id))


@bp.post("/<int:form_id>")
def update(form_id):
    form = _form(form_id)
    data = _definition(request.form)
    try:
        form = form.update_form(g.user, **data)
    except ValidationError as exc:
        return _edit_page(form, 422, errors=exc.fields, values=data)
    flash("Form saved.", "info")
    return redirect(url_for("capture.edit", form_id=form.id))


# ----- public ------------------------------------------------------------------------------------

def _public_page(form, status=200, errors=None, values=None, done=False):
    body = render_template("capture/public.html", form=form, errors=errors or {}, values=values or {}, done=done,
                           labels=FIELDS, timeframes=TIMEFRAMES, honeypot=HONEYPOT, settings=current_settings())
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


@public.get("/f/<key>")
def form(key):
    """The public form page (no login; links and QR codes point here)."""
    capture = CaptureForm.by_key(key)
    if capture is None:
        abort(404)
    return _public_page(capture)


@public.get("/f/<key>/logo")
def logo(key):
    """The company logo for the public form page (only while the form is live)."""
    if CaptureForm.by_key(key) is None:
        abort(404)
    from .settings import logo_response
    return logo_response(Settings.load())


@public.post("/f/<key>")
def submit(key):
    """A submission from the public page or from the snippet on a website."""
    capture = CaptureForm.by_key(key)
    if capture is None:
        abort(404)
    try:
        capture.submit(request.form, request.remote_addr)
    except ValidationError as exc:
        return _public_page(capture, 422, errors=exc.fields, values=capture.visitor_input(request.form))
    except Throttled as exc:
        return _public_page(capture, 429, errors={"form": exc.message}, values=capture.visitor_input(request.form))
    return _public_page(capture, done=True)
