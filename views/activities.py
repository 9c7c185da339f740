"""Notes and activities on leads and opportunities (the card shows the next open one)."""
from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from models import Activity, Lead, Opportunity, ValidationError

from .common import is_htmx, load_record, parse_record_key, render_fragment, url_record

bp = Blueprint("activities", __name__)

RECORDS = {"lead": Lead, "opportunity": Opportunity}
ENDPOINTS = {"lead": "leads.detail", "opportunity": "opportunities.detail"}


def _record(key):
    parsed = parse_record_key(key, RECORDS)
    if parsed is None:
        abort(400)
    model, pk = parsed
    record = load_record(model, pk)
    if record is None:
        abort(404)
    return record


def _timeline_html(record):
    from . import leads, opportunities
    context = (leads if record.record_type == "lead" else opportunities).panel_context(record)
    return render_template("_timeline.html", oob=True, **context)


def _back(record):
    return redirect(url_for(ENDPOINTS[record.record_type], **{f"{record.record_type}_id": record.id}))


@bp.post("/activities")
def create():
    """Log a note, call, email, meeting or task on a record; the timeline and card follow."""
    record = _record(request.form.get("record"))
    data = {k: request.form.get(k, "") for k in ("kind", "subject", "body", "due_date")}
    try:
        Activity.add(g.user, record, **data)
    except ValidationError as exc:
        if not is_htmx():
            return _back(record)
        return render_fragment(render_template("_activity_form.html", record=record, activity_errors=exc.fields,
                                               activity_values=data), 422, reswap="outerHTML")
    if not is_htmx():
        return _back(record)
    from .board import card_refresh
    fresh = type(record).get_by_id(record.id)
    body = render_template("_activity_form.html", record=fresh) + _timeline_html(fresh) + card_refresh(fresh)
    return render_fragment(body, 201, reswap="outerHTML")


@bp.post("/activities/<int:activity_id>/done")
def done(activity_id):
    """Tick a task off."""
    activity = url_record("activity_id")
    if activity.record_type not in RECORDS:
        abort(404)
    activity.mark_done(g.user)
    record = RECORDS[activity.record_type].get_by_id(activity.record_id)
    if not is_htmx():
        return _back(record)
    from .board import card_refresh
    return render_fragment(_timeline_html(record) + card_refresh(record), 200, reswap="none")
