"""Accounts (companies): the list, the create form and the detail panel with inline fields."""
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from peewee import JOIN, fn

from models import Account, Contact, HistoryEvent, User, ValidationError
from models.party import COUNTRY_DEFAULT

from .common import assignable_choices, in_reach, render, url_record
from .inline import Field, register_fields

bp = Blueprint("accounts", __name__)

FIELDS = [
    Field("name", "Name"),
    Field("vat_id", "VAT id", max_length=40),
    Field("email", "Email", "email", max_length=254),
    Field("phone", "Phone", "tel", max_length=40),
    Field("website", "Website"),
    Field("street", "Street"),
    Field("postal_code", "Postal code", max_length=20),
    Field("city", "City", max_length=100),
    Field("country", "Country (2 letters)", max_length=2),
    Field("owner", "Owner", "record", assignable_choices),
]
CREATE_FIELDS = ("name", "vat_id", "email", "phone", "website", "street", "postal_code", "city", "country")


def refreshed_parts(record, head_template):
    """Out-of-band head and timeline after an inline save (a plain str, so the field's HTML is not escaped)."""
    head = render_template(head_template, record=record, head_oob=True)
    timeline = render_template("_timeline.html", record=record, oob=True, activities=[],
                               events=list(HistoryEvent.about(record).limit(100)))
    return head + timeline


register_fields(bp, Account, "account", "accounts", FIELDS,
                on_saved=lambda account: refreshed_parts(account, "accounts/_head.html"))


def panel_context(account):
    """Fields, the people at the account, its deals and documents, and the timeline."""
    return {"record": account, "account": account, "fields": FIELDS, "kind": "account", "endpoint": "accounts",
            "contacts": list(account.contact_list().limit(100)), **account.deals(),
            "events": list(HistoryEvent.about(account).limit(100)), "activities": []}


@bp.get("/accounts/<int:account_id>")
def detail(account_id):
    """The account's panel; a full page when opened directly."""
    account = url_record("account_id")
    return render("accounts/detail.html", "accounts/_panel.html", **panel_context(account))


@bp.get("/accounts/new")
def new():
    """The form for a new account."""
    return render("accounts/new.html", "accounts/_form.html", errors={}, values={"country": COUNTRY_DEFAULT})


@bp.post("/accounts")
def create():
    """Create an account (the model validates); the form again with messages at the fields on refusal."""
    values = {name: request.form.get(name, "") for name in CREATE_FIELDS}
    try:
        account = Account.create_account(g.user, **values)
    except ValidationError as exc:
        return render("accounts/new.html", "accounts/_form.html", 422, errors=exc.fields, values=values,
                      message=exc.message)
    flash(f"Account {account.name} created.", "info")
    return redirect(url_for("accounts.detail", account_id=account.id))


def _account_filters(args):
    query = Account.select(Account, User.id, User.name).join(User, JOIN.LEFT_OUTER, on=(Account.owner == User.id))
    query = in_reach(query)
    text = (args.get("q") or "").replace("\x00", "").strip()[:100]
    if text:
        query = query.where(Account.name.contains(text) | Account.vat_id.contains(text)
                            | Account.email.contains(text) | Account.city.contains(text))
    return query


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"name": fn.LOWER(Account.name), "city": fn.LOWER(Account.city), "country": Account.country,
            "vat": Account.vat_id, "created": Account.created_at}


@bp.get("/accounts")
def index():
    """All accounts, filtered by text, sorted and paged; the filters live in the URL."""
    from .listing import paginate
    sorts = _sorts()
    page = paginate(_account_filters(request.args), sorts, "name", tiebreak=Account.id)
    ids = [a.id for a in page.items]
    counts = {}
    if ids:
        counts = dict(Contact.select(Contact.account, fn.COUNT(Contact.id)).where(Contact.account.in_(ids))
                      .group_by(Contact.account).tuples())
    return render("accounts/index.html", "accounts/_list.html", page=page, contact_counts=counts, args=request.args)


EXPORT_COLUMNS = [
    ("ID", lambda r: r.id), ("Name", lambda r: r.name), ("VAT id", lambda r: r.vat_id), ("Email", lambda r: r.email),
    ("Phone", lambda r: r.phone), ("Website", lambda r: r.website), ("Street", lambda r: r.street),
    ("Postal code", lambda r: r.postal_code), ("City", lambda r: r.city), ("Country", lambda r: r.country),
    ("Owner", lambda r: r.owner.name if r.owner_id else None), ("Created", lambda r: r.created_at),
]


@bp.get("/accounts/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("accounts", _account_filters(request.args), _sorts(), "name", EXPORT_COLUMNS, tiebreak=Account.id)
