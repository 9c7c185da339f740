"""Contacts (people): the list, the create form (optionally at an account) and the detail panel."""
from flask import Blueprint, flash, g, redirect, request, url_for
from peewee import JOIN, fn

from models import Account, Contact, HistoryEvent, User, ValidationError
from models.party import COUNTRY_DEFAULT

from .accounts import refreshed_parts
from .common import assignable_choices, in_reach, load_record, render, url_record
from .inline import Field, register_fields

bp = Blueprint("contacts", __name__)


def account_choices():
    """Accounts to pick from, by name."""
    query = in_reach(Account.select(Account.id, Account.name)).order_by(fn.LOWER(Account.name)).limit(1000)
    return [(a.id, a.name) for a in query]


FIELDS = [
    Field("name", "Name"),
    Field("job_title", "Job title", max_length=120),
    Field("account", "Account", "record", account_choices),
    Field("email", "Email", "email", max_length=254),
    Field("phone", "Phone", "tel", max_length=40),
    Field("street", "Street"),
    Field("postal_code", "Postal code", max_length=20),
    Field("city", "City", max_length=100),
    Field("country", "Country (2 letters)", max_length=2),
    Field("notes", "Notes", "textarea", max_length=5000),
    Field("owner", "Owner", "record", assignable_choices),
]
CREATE_FIELDS = ("name", "job_title", "account", "email", "phone", "street", "postal_code", "city", "country",
                 "notes")

register_fields(bp, Contact, "contact", "contacts", FIELDS,
                on_saved=lambda contact: refreshed_parts(contact, "contacts/_head.html"))


def panel_context(contact):
    """Fields, the account, the contact's deals and documents, and the timeline."""
    return {"record": contact, "contact": contact, "fields": FIELDS, "kind": "contact", "endpoint": "contacts",
            **contact.deals(), "events": list(HistoryEvent.about(contact).limit(100)), "activities": []}


@bp.get("/contacts/<int:contact_id>")
def detail(contact_id):
    """The contact's panel; a full page when opened directly."""
    contact = url_record("contact_id")
    return render("contacts/detail.html", "contacts/_panel.html", **panel_context(contact))


def _back_url(account):
    """Where Cancel goes: the account the contact was started from, else the contact list."""
    if account.isdigit() and len(account) < 12 and load_record(Account, int(account), write=False):
        return url_for("accounts.detail", account_id=int(account))
    return url_for("contacts.index")


@bp.get("/contacts/new")
def new():
    """The form for a new contact (?account=<id> preselects the account)."""
    account = request.args.get("account", "")
    values = {"account": account if account.isdigit() and len(account) < 12 else "", "country": COUNTRY_DEFAULT}
    return render("contacts/new.html", "contacts/_form.html", errors={}, values=values, accounts=account_choices(),
                  back_url=_back_url(account))


@bp.post("/contacts")
def create():
    """Create a contact (the model validates); the form again with messages at the fields on refusal."""
    values = {name: request.form.get(name, "") for name in CREATE_FIELDS}
    try:
        contact = Contact.create_contact(g.user, **values)
    except ValidationError as exc:
        return render("contacts/new.html", "contacts/_form.html", 422, errors=exc.fields, values=values,
                      message=exc.message, accounts=account_choices(), back_url=_back_url(values["account"]))
    flash(f"Contact {contact.name} created.", "info")
    return redirect(url_for("contacts.detail", contact_id=contact.id))


def _contact_filters(args):
    query = (Contact.select(Contact, Account.id, Account.name, User.id, User.name)
             .join(Account, JOIN.LEFT_OUTER, on=(Contact.account == Account.id)).switch(Contact)
             .join(User, JOIN.LEFT_OUTER, on=(Contact.owner == User.id)))
    query = in_reach(query)
    text = (args.get("q") or "").replace("\x00", "").strip()[:100]
    if text:
        query = query.where(Contact.name.contains(text) | Contact.email.contains(text)
                            | Contact.job_title.contains(text) | Account.name.contains(text))
    account = args.get("account") or ""
    if account == "none":
        query = query.where(Contact.account.is_null())
    elif account.isdigit() and len(account) < 12:
        query = query.where(Contact.account == int(account))
    return query


def _sorts():
    """The list's sort keys (shared by the page and its CSV export)."""
    return {"name": fn.LOWER(Contact.name), "account": fn.LOWER(Account.name), "email": Contact.email,
            "city": fn.LOWER(Contact.city), "created": Contact.created_at}


@bp.get("/contacts")
def index():
    """All contacts, filtered by text and account, sorted and paged; the filters live in the URL."""
    from .listing import paginate
    sorts = _sorts()
    page = paginate(_contact_filters(request.args), sorts, "name", tiebreak=Contact.id)
    return render("contacts/index.html", "contacts/_list.html", page=page, accounts=account_choices(),
                  args=request.args)


EXPORT_COLUMNS = [
    ("ID", lambda r: r.id), ("Name", lambda r: r.name), ("Job title", lambda r: r.job_title),
    ("Email", lambda r: r.email), ("Phone", lambda r: r.phone),
    ("Account", lambda r: r.account.name if r.account_id else None), ("Street", lambda r: r.street),
    ("Postal code", lambda r: r.postal_code), ("City", lambda r: r.city), ("Country", lambda r: r.country),
    ("Owner", lambda r: r.owner.name if r.owner_id else None), ("Created", lambda r: r.created_at),
]


@bp.get("/contacts/export.csv")
def export():
    """The list with its current filter and sort as CSV (every row, not one page)."""
    from .listing import export_csv
    return export_csv("contacts", _contact_filters(request.args), _sorts(), "name", EXPORT_COLUMNS, tiebreak=Contact.id)
