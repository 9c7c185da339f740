"""Lead pages: the detail panel (beside the board or as its own page)."""
from flask import Blueprint, abort

from models import Activity, HistoryEvent, Lead

from .common import render

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
