"""Opportunity pages: the detail panel (beside the board or as its own page)."""
from flask import Blueprint, abort

from models import Activity, HistoryEvent, Opportunity

from .common import render

bp = Blueprint("opportunities", __name__)


def panel_context(opportunity):
    """Fields, lines and totals, related documents and the timeline (including the lead's)."""
    related = [opportunity] + list(opportunity.quotes_query())
    related += list(opportunity.orders) + list(opportunity.invoices)
    if opportunity.lead_id:
        related.append(opportunity.lead)
    return {"record": opportunity, "opportunity": opportunity, "lines": opportunity.line_rows(),
            "totals": opportunity.totals(), "quotes": list(opportunity.quotes_query()),
            "orders": list(opportunity.orders), "invoices": list(opportunity.invoices),
            "events": list(HistoryEvent.about(*related).limit(200)),
            "activities": list(Activity.regarding(*[r for r in related if r.record_type in ("lead", "opportunity")]).limit(100))}


@bp.get("/opportunities/<int:opportunity_id>")
def detail(opportunity_id):
    """The opportunity's panel; a full page when opened directly."""
    opportunity = Opportunity.get_or_none(Opportunity.id == opportunity_id)
    if opportunity is None:
        abort(404)
    return render("opportunities/detail.html", "opportunities/_panel.html", **panel_context(opportunity))
