"""Inline field editing for detail panels: click to edit, save on enter/blur, escape cancels.

A resource lists its editable fields once; `register_fields` adds three routes to its blueprint:
GET  /<prefix>/<id>/fields/<name>        the field as shown (cancel)
GET  /<prefix>/<id>/fields/<name>/edit   the field as a form (a page of its own without htmx)
POST /<prefix>/<id>/fields/<name>        save through the model's update_fields: 200 shown,
                                         422 form with the message at the field, 409 fresh value
"""
from dataclasses import dataclass, field as dc_field
from decimal import Decimal

from flask import abort, g, redirect, render_template, request, url_for

from models import DomainError, StaleVersion, ValidationError

from .common import is_htmx, render, render_fragment, url_record


@dataclass
class Field:
    name: str
    label: str
    widget: str = "text"
    choices: object = None
    rule: str = None
    max_length: int = 200
    editable: object = None
    attribute: str = None
    extra: dict = dc_field(default_factory=dict)

    def options(self):
        return self.choices() if callable(self.choices) else (self.choices or [])

    def raw(self, record):
        """The stored value (an id for records)."""
        if self.widget == "record":
            return getattr(record, f"{self.attribute or self.name}_id")
        return getattr(record, self.attribute or self.name)

    def form_value(self, record):
        value = self.raw(record)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "1" if value else ""
        if isinstance(value, Decimal):
            return f"{value:f}"
        return str(value)

    def shown(self, record):
        """The value as text for the panel (choices show their label)."""
        value = self.raw(record)
        if value in (None, ""):
            return ""
        if self.widget == "checkbox":
            return "Yes" if value else "No"
        for key, label in self.options():
            if str(key) == str(value):
                return label
        return value

    def can_edit(self, record):
        if self.editable is None:
            return not record.edit_locked_reason()
        return self.editable(record)


def field_ids(kind, record, name):
    return f"field-{kind}-{record.id}-{name}"


def register_fields(bp, model, kind, prefix, fields, on_saved=None):
    """Add the three inline-edit routes for `fields` of `model` to blueprint `bp`."""
    by_name = {f.name: f for f in fields}

    def load(record_id, name):
        spec = by_name.get(name)
        if spec is None:
            abort(404)
        record = url_record(model)
        return record, spec

    def fragment(record, spec, mode, status=200, error=None, value=None, extra_html=""):
        context = {"record": record, "spec": spec, "mode": mode, "kind": kind, "prefix": prefix,
                   "error": error, "value": spec.form_value(record) if value is None else value,
                   "endpoint": bp.name}
        if is_htmx():
            body = render_template("_field.html", **context) + extra_html
            return render_fragment(body, status, reswap="outerHTML")
        return render("field_page.html", None, status, **context)

    def show(record_id, name):
        """A field as shown in the panel."""
        record, spec = load(record_id, name)
        return fragment(record, spec, "show")

    def edit(record_id, name):
        """A field as a small form."""
        record, spec = load(record_id, name)
        if not spec.can_edit(record):
            return fragment(record, spec, "show", 409, error=record.edit_locked_reason() or "This field is read-only.")
        return fragment(record, spec, "edit")

    def save(record_id, name):
        """Save one field through the model (the model validates and writes history)."""
        record, spec = load(record_id, name)
        if not spec.can_edit(record):
            return fragment(record, spec, "show", 409, error=record.edit_locked_reason() or "This field is read-only.")
        raw = request.form.get(name, "")
        if spec.widget == "checkbox":
            raw = "1" if request.form.get(name) else ""
        others = {other.name: other.form_value(record) for other in fields if other.name != name}
        try:
            record.update_fields(g.user, expected_version=request.form.get("version"), **{name: raw})
        except StaleVersion as exc:
            fresh = model.get_by_id(record.id)
            return fragment(fresh, spec, "show", 409, error=exc.message,
                            extra_html=_version_oob(kind, fresh))
        except ValidationError as exc:
            return fragment(record, spec, "edit", 422, error=exc.fields.get(name, exc.message), value=raw)
        except DomainError as exc:
            return fragment(model.get_by_id(record.id), spec, "show", exc.status, error=exc.message)
        fresh = model.get_by_id(record.id)
        if not is_htmx():
            return redirect(url_for(f"{bp.name}.detail", **{f"{kind}_id": fresh.id}))
        extra = _version_oob(kind, fresh)
        for other in fields:  # a field the model changed along with this one (a raised rate ends an exemption)
            if other.name in others and other.form_value(fresh) != others[other.name]:
                extra += render_template("_field.html", record=fresh, spec=other, mode="show", kind=kind,
                                         prefix=prefix, endpoint=bp.name, error=None, oob=True)
        if on_saved is not None:
            extra += on_saved(fresh)
        return fragment(fresh, spec, "show", extra_html=extra)

    bp.add_url_rule(f"/{prefix}/<int:record_id>/fields/<name>", "field_show", show, methods=["GET"])
    bp.add_url_rule(f"/{prefix}/<int:record_id>/fields/<name>/edit", "field_edit", edit, methods=["GET"])
    bp.add_url_rule(f"/{prefix}/<int:record_id>/fields/<name>", "field_save", save, methods=["POST"])
    return by_name


def _version_oob(kind, record):
    return (f'<input type="hidden" id="version-{kind}-{record.id}" name="version" '
            f'value="{int(record.version)}" hx-swap-oob="true">')
