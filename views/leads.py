"""Lead pages: the detail panel (beside the board or as its own page)."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from models import Activity, HistoryEvent, Lead, ValidationError

from .common import is_htmx, render, render_fragment

bp = Blueprint("leads", __name__)


def panel_context(lead):
    """Everything the lead panel shows: fields, the opportunity it became, the timeline."""
    return {"record": lead, "lead": lead, "opportunity": lead.opportunity,
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
