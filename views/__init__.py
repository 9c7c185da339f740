"""Blueprints, template helpers and the one domain-error handler."""
import datetime

from flask import Flask, current_app, url_for

from models.money import CURRENCY_SYMBOLS, format_money
from models.opportunity import COLUMN_LABELS


ACTION_LABELS = {"create": "created it", "update": "edited it", "qualify": "qualified the lead",
                 "disqualify": "disqualified the lead", "reopen": "reopened it", "move": "moved it",
                 "won": "closed it as won", "lost": "closed it as lost", "activate": "sent (activated) the quote",
                 "revise": "revised the quote", "fulfil": "fulfilled the order", "issue": "issued the invoice",
                 "paid": "recorded the payment", "cancel": "canceled it", "add_line": "added a line",
                 "update_line": "changed a line", "remove_line": "removed a line", "move_line": "reordered the lines",
                 "freeze": "stored the PDF", "email": "emailed the document",
                 "reminder": "sent a payment reminder"}
NAV = [("board.board", "Board"), ("leads.index", "Leads"), ("opportunities.index", "Opportunities"),
       ("quotes.index", "Quotes"), ("orders.index", "Orders"), ("invoices.index", "Invoices"),
       ("accounts.index", "Accounts"), ("contacts.index", "Contacts"), ("products.index", "Products"),
       ("settings.index", "Settings")]
RECORD_ENDPOINTS = {"lead": "leads.detail", "opportunity": "opportunities.detail", "quote": "quotes.detail",
                    "order": "orders.detail", "invoice": "invoices.detail", "account": "accounts.detail",
                    "contact": "contacts.detail", "product": "products.detail"}


def record_url(record):
    """The page of a record (None for a kind of record without one)."""
    endpoint = RECORD_ENDPOINTS.get(record.record_type)
    if endpoint is None or endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **{f"{record.record_type}_id": record.id})


def register(app: Flask):
    """Attach every blueprint, the Jinja helpers and the error handlers to the app."""
    from jinja2 import pass_context

    from models import Account, Contact, User
    from models.board import card_facts

    linked_fields = {"account": Account, "contact": Contact, "owner": User}

    from . import (accounts, activities, admin, api, auth, board, capture, contacts, documents, invoices, leads,
                   opportunities, orders, products, quotes, search, settings)
    from .common import register_error_handlers

    for module in (auth, board, leads, opportunities, activities, products, quotes, orders, invoices, accounts,
                   contacts, settings, search, documents, admin, capture, api):
        app.register_blueprint(module.bp)
    from . import imports
    app.register_blueprint(imports.bp)
    app.register_blueprint(capture.public)
    register_error_handlers(app)

    @app.template_global()
    @pass_context
    def facts(context, card):
        return card_facts(card, context["settings"], context.get("invoices"))

    @app.template_global()
    def has_endpoint(name):
        return name in app.view_functions

    @app.template_global()
    def nav_items():
        """Top-bar links to the pages that exist."""
        return [(e, label) for e, label in NAV if e in app.view_functions]

    @app.template_global()
    def timeline(events, activities):
        items = [("event", e.at, e.id, e) for e in events] + [("activity", a.created_at, a.id, a) for a in activities]
        items.sort(key=lambda item: (item[1], item[0] == "event", item[2]), reverse=True)
        return [{"kind": kind, "obj": obj} for kind, _, _, obj in items]

    @app.template_global()
    def change_value(field, value):
        """A history value as a person reads it: names instead of ids for linked records."""
        if value is None:
            return "—"
        if field in ("pdf_sha256", "credit_note_sha256") and isinstance(value, str):
            return f"{value[:12]}…"
        model = linked_fields.get(field)
        if model is None or not isinstance(value, int):
            return value
        from flask import g
        cache = g.setdefault("linked_names", {})
        key = (field, value)
        if key not in cache:
            row = model.get_or_none(model.id == value)
            cache[key] = row.name if row is not None else f"#{value}"
        return cache[key]

    @app.template_global()
    def action_label(event):
        return ACTION_LABELS.get(event.action, event.action.replace("_", " "))

    @app.context_processor
    def labels_context():
        return {"labels": COLUMN_LABELS}

    @app.template_global()
    def action_name(record, target):
        """The button label of a move from a panel: the business step it does."""
        if record.record_type == "lead":
            return {"develop": "Qualify", "lost": "Disqualify", "qualify": "Reopen"}.get(
                target, f"Qualify and move to {COLUMN_LABELS[target]}")
        if record.status == "lost":
            return f"Reopen in {COLUMN_LABELS[target]}"
        return {"fulfill": "Close as won", "lost": "Close as lost", "invoiced": "Fulfil and invoice"}.get(
            target, f"Move to {COLUMN_LABELS[target]}")

    @app.template_global()
    def move_targets(card):
        return card.move_targets()

    app.add_template_global(record_url)
    from models.mail import reminders
    app.add_template_global(reminders)  # an invoice's payment reminders (its summary lists them)

    @app.template_filter("money")
    def money_filter(amount):
        return format_money(amount, app.config["CURRENCY"])

    @app.template_filter("plain")
    def plain_filter(value):
        """A Decimal without trailing zeros or exponent: 10.00 -> 10, 1.500 -> 1.5."""
        if value is None:
            return ""
        text = f"{value.normalize():f}"
        return text

    @app.template_filter("day")
    def day_filter(value):
        if not value:
            return ""
        if isinstance(value, datetime.datetime):
            value = value.date()
        if value.year == datetime.date.today().year:
            return value.strftime("%-d %b")
        return value.strftime("%-d %b %Y")

    @app.context_processor
    def currency_context():
        code = app.config["CURRENCY"]
        return {"currency": code, "currency_symbol": CURRENCY_SYMBOLS.get(code, code)}
