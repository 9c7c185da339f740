"""Lead pages: the detail panel with inline fields, quick-create, the lead list."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from models import Activity, HistoryEvent, Lead, User, ValidationError
from models.lead import RATINGS, SOURCES, TIMEFRAMES

from .common import is_htmx, render, render_fragment
from .inline import Field, register_fields

bp = Blueprint("leads", __name__)


def _owners():
    return [(u.id, u.name) for u in User.select(User.id, User.name).where(User.active == True).order_by(User.name)]  # noqa: E712


def _choices(values):
    return [(v, v.capitalize()) for v in values]


FIELDS = [
    Field("name", "Name", rule="qualify"),
    Field("job_title", "Job title", max_length=120),
    Field("company", "Company", rule="qualify"),
    Field("private_buyer", "Private buyer", "checkbox"),
    Field("email", "Email", "email", rule="qualify", max_length=254),
    Field("phone", "Phone", "tel", max_length=40),
    Field("topic", "Topic / need"),
    Field("budget_amount", "Budget", "money", rule="qualify"),
    Field("purchase_timeframe", "Purchase timeframe", "select", _choices(TIMEFRAMES), rule="qualify"),
    Field("decision_maker_known", "Decision maker known", "checkbox"),
    Field("source", "Source", "select", _choices(SOURCES)),
    Field("rating", "Rating", "select", _choices(RATINGS)),
    Field("owner", "Owner", "record", _owners),
    Field("notes", "Notes", "textarea", max_length=20000),
]


def _card_refresh(lead):
    from .board import card_refresh
    return card_refresh(lead)


register_fields(bp, Lead, "lead", "leads", FIELDS, on_saved=_card_refresh)


def panel_context(lead):
    """Everything the lead panel shows: fields, the opportunity it became, the timeline."""
    return {"record": lead, "lead": lead, "opportunity": lead.opportunity, "fields": FIELDS,
            "kind": "lead", "endpoint": "leads",
            "events": list(HistoryEvent.about(lead).limit(100)),
            "activities": list(Activity.regarding(lead).limit(100))}


@bp.get("/leads/<int:lead_id>")
def detail(lead_id):
    """The lead's panel; a full page when opened directly."""
    lead = Lead.get_or_none(Lead.id == lead_id)
    if lead is None:
        abort(404)
    return render("leads/detail.html", "leads/_panel.html", **panel_context(lead))


QUICK_FIELDS = ("name", "company", "email", "phone", "topic", "budget_amount")


@bp.post("/leads")
def create():
    """Quick-create a lead from the top of the Qualify column; it lands there at once."""
    data = {k: request.form.get(k, "") for k in QUICK_FIELDS}
    try:
        lead = Lead.create_lead(g.user, source="other", **data)
    except ValidationError as exc:
        return render("leads/new.html", "leads/_quick_create.html", 422, errors=exc.fields, values=data)
    if not is_htmx():
        flash(f"Lead {lead.name} added to Qualify.", "info")
        return redirect(url_for("board.board"))
    from .board import card_update
    body = render_template("leads/_quick_create.html", errors=None, values=None)
    body += card_update(lead, ["qualify"])
    return render_fragment(body, 201, toast={"message": f"Lead {lead.name} added to Qualify.", "kind": "info"},
                           reswap="outerHTML")
