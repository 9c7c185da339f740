"""Lead pages: the detail panel with inline fields, quick-create, the lead list."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from peewee import JOIN

from models import Activity, HistoryEvent, Lead, User, ValidationError
from models.lead import RATINGS, SOURCES, TIMEFRAMES

from .common import assignable_choices, in_reach, is_htmx, owner_choices, render, render_fragment, url_record
from .inline import Field, register_fields

bp = Blueprint("leads", __name__)


_owners = owner_choices


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
    Field("campaign", "Campaign", max_length=80),
    Field("rating", "Rating", "select", _choices(RATINGS)),
    Field("owner", "Owner", "record", assignable_choices),
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
    lead = url_record("lead_id")
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


def _lead_filters(args):
    from peewee import fn
    query = Lead.select(Lead, User.id, User.name).join(User, JOIN.LEFT_OUTER, on=(Lead.owner == User.id))
    query = in_reach(query)
    text = (args.get("q") or "").strip().lower()[:100]
    if text:
        like = text
        query = query.where(fn.LOWER(Lead.name).contains(like) | fn.LOWER(Lead.company).contains(like)
                            | fn.LOWER(Lead.email).contains(like) | fn.LOWER(Lead.topic).contains(like))
    status = args.get("status", "open")
    if status in ("open", "qualified", "disqualified"):
        query = query.where(Lead.status == status)
    if args.get("source") in SOURCES:
        query = query.where(Lead.source == args["source"])
    campaign = (args.get("campaign") or "").strip()[:80]
    if campaign:
        query = query.where(Lead.campaign == campaign)
    if args.get("rating") in RATINGS:
        query = query.where(Lead.rating == args["rating"])
    owner = args.get("owner") or ""
    if owner == "me":
        query = query.where(Lead.owner == g.user.id)
    elif owner.isdigit() and len(owner) < 12:
        query = query.where(Lead.owner == int(owner))
    return query


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"created": Lead.created_at, "name": Lead.name, "company": Lead.company, "budget": Lead.budget_amount,
            "rating": Lead.rating, "status": Lead.status, "source": Lead.source}


@bp.get("/leads")
def index():
    """All leads, filtered, sorted and paged; the filters live in the URL."""
    from .listing import paginate
    sorts = _sorts()
    page = paginate(_lead_filters(request.args), sorts, "-created", tiebreak=Lead.id.desc())
    return render("leads/index.html", "leads/_list.html", page=page, sources=SOURCES, ratings=RATINGS,
                  owners=_owners(), args=request.args)


EXPORT_COLUMNS = [
    ("ID", lambda r: r.id), ("Name", lambda r: r.name), ("Company", lambda r: r.company),
    ("Private buyer", lambda r: r.private_buyer), ("Job title", lambda r: r.job_title), ("Email", lambda r: r.email),
    ("Phone", lambda r: r.phone), ("Source", lambda r: r.source), ("Campaign", lambda r: r.campaign),
    ("Topic", lambda r: r.topic), ("Budget", lambda r: r.budget_amount),
    ("Purchase timeframe", lambda r: r.purchase_timeframe), ("Rating", lambda r: r.rating),
    ("Status", lambda r: r.status), ("Owner", lambda r: r.owner.name if r.owner_id else None),
    ("Created", lambda r: r.created_at), ("Last activity", lambda r: r.last_activity_at),
]


@bp.get("/leads/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("leads", _lead_filters(request.args), _sorts(), "-created", EXPORT_COLUMNS, tiebreak=Lead.id.desc())
