"""Document lines (opportunity, quote, order, invoice) and the rules for editing them."""
import contextlib
from decimal import Decimal

from peewee import CharField, Check, ForeignKeyField, IntegerField

from .base import BaseModel, MoneyField, Param, PercentField, QuantityField, prepared, write_transaction
from .catalog import SUPPLY_KEYS, Product, settle_exemption, with_supply_read
from .money import document_totals, line_net, line_tax
from .validation import Cleaner

LINE_FIELDS = ("product", "description", "quantity", "unit", "unit_price", "discount_pct", "tax_rate",
               "tax_exemption", "supply")


MAX_LINE_AMOUNT = Decimal(10) ** 12


def check_line_size(line):
    """A line whose value would not fit the money columns is refused at its quantity and price."""
    from .errors import ValidationError
    if abs(Decimal(line.quantity) * Decimal(line.unit_price)) > MAX_LINE_AMOUNT:
        message = "Quantity × unit price is too large (at most 1,000,000,000,000)."
        raise ValidationError("The line could not be saved.", {"quantity": message, "unit_price": message})


class LineBase(BaseModel):
    """Fields and arithmetic shared by every kind of line (not a table of its own)."""

    position = IntegerField(default=0)
    product = ForeignKeyField(Product, null=True, backref="+", on_delete="RESTRICT")
    description = CharField(max_length=500)
    quantity = QuantityField(default=Decimal("1.000"), constraints=[Check("quantity > 0")])
    unit = CharField(max_length=20, default="piece")
    unit_price = MoneyField(default=Decimal("0.00"), constraints=[Check("unit_price >= 0")])
    discount_pct = PercentField(default=Decimal("0.00"),
                                constraints=[Check("discount_pct >= 0 AND discount_pct <= 10000")])
    tax_rate = PercentField(default=Decimal("0.00"), constraints=[Check("tax_rate >= 0")])
    tax_exemption = CharField(max_length=200, default="")  # a 0 % line's legal ground (VAT category E)
    supply = CharField(max_length=8, default="services")  # goods or services: the VAT of a sale abroad

    @property
    def net(self):
        return line_net(self.quantity, self.unit_price, self.discount_pct)

    @property
    def tax(self):
        return line_tax(self.net, self.tax_rate)

    @property
    def gross(self):
        return self.net + self.tax

    def copy_values(self):
        """The line's values, for copying it onto another document."""
        return {"position": self.position, "product": self.product_id,
                "description": self.description, "quantity": self.quantity, "unit": self.unit,
                "unit_price": self.unit_price, "discount_pct": self.discount_pct,
                "tax_rate": self.tax_rate, "tax_exemption": self.tax_exemption, "supply": self.supply}

    @staticmethod
    def clean(data, partial=False):
        """Validate line input. A product fills description, unit, price, tax (its rate and exemption) and
        whether goods or services are supplied, when not given."""
        c = Cleaner(with_supply_read(data))
        c.record("product", Product, label="product")
        c.text("description", 500)
        c.decimal("quantity", 3, minimum=Decimal("0.001"), maximum=Decimal(10 ** 9))
        c.text("unit", 20)
        c.money("unit_price")
        c.decimal("discount_pct", 2, minimum=Decimal(0), maximum=Decimal(100))
        c.decimal("tax_rate", 2, minimum=Decimal(0), maximum=Decimal(100))
        c.text("tax_exemption", 200)
        c.choice("supply", SUPPLY_KEYS)
        values = c.raise_if_errors("The line could not be saved.")
        product = values.get("product")
        if not partial:
            if product is not None:
                values.setdefault("description", product.name)
                if not values.get("description"):
                    values["description"] = product.name
                values.setdefault("unit", product.unit)
                if values.get("unit_price") is None:
                    values["unit_price"] = product.list_price
                _take_product_vat(values, product)
            if not values.get("description"):
                c.fail("description", "Choose a product or describe the item.")
            if values.get("unit_price") is None:
                c.fail("unit_price", "Enter a unit price.")
            c.raise_if_errors("The line could not be saved.")
            for key, default in (("quantity", Decimal("1")), ("discount_pct", Decimal(0)),
                                 ("tax_rate", Decimal(0)), ("unit", "piece"), ("tax_exemption", ""),
                                 ("supply", "services")):
                if values.get(key) is None:
                    values[key] = default
            settle_exemption(values, None, "")
        return {k: v for k, v in values.items() if not (partial and v is None and k != "product")}


def _take_product_vat(values, product):
    """The VAT of a line made from (or given) `product`, where `values` do not say it: the product's rate,
    its exemption ground when the line has the product's rate (else none) and its goods or services."""
    if values.get("tax_rate") is None:
        values["tax_rate"] = product.tax_rate
    if not values.get("tax_exemption"):
        values["tax_exemption"] = product.tax_exemption if values["tax_rate"] == product.tax_rate else ""
    if not values.get("supply"):
        values["supply"] = product.supply


def totals_of(lines):
    """Totals (net, tax, gross, per rate) of an iterable of lines."""
    return document_totals(list(lines))


class HasLines:
    """Line editing and cached totals for a document with a `line_model` whose FK is `document`."""

    line_model = None

    @property
    def customer_name(self):
        """The account's name, else the contact's (every document with lines has a customer)."""
        if self.account_id:
            return self.account.name
        return self.contact.name if self.contact_id else ""

    @contextlib.contextmanager
    def _editing_lines(self, expected_version):
        """A write transaction on a fresh, version-checked document whose lines may change."""
        with write_transaction():
            self.reload_locked()
            self.check_version(expected_version)
            self._ensure_lines_editable()
            yield

    def line_rows(self):
        model = self.line_model
        return list(prepared((model, "rows"), lambda: model.select().where(model.document == Param("document"))
                             .order_by(model.position, model.id), document=self.id))

    def totals(self):
        return totals_of(self.line_rows())

    def lines_locked_reason(self):
        """Why the lines cannot be edited now (None: they can)."""
        return None

    def _ensure_lines_editable(self):
        from .errors import NotAllowed
        reason = self.lines_locked_reason()
        if reason:
            raise NotAllowed(reason)

    def refresh_totals(self):
        """Store net/tax/gross of the lines on the document (for lists and column sums)."""
        totals = self.totals()
        self.net_total, self.tax_total, self.gross_total = totals.net, totals.tax, totals.gross
        return totals

    def copy_lines_from(self, source):
        """Copy every line of `source` onto this document (frozen values)."""
        rows = [dict(line.copy_values(), document=self.id) for line in source.line_rows()]
        if rows:
            self.line_model.insert_many(rows).execute()

    def add_line(self, actor, expected_version=None, **data):
        """Append a line (product or free text); one history event on the document."""
        from .history import HistoryEvent
        values = LineBase.clean(data)
        model = self.line_model
        with self._editing_lines(expected_version):
            last = model.select(model.position).where(model.document == self.id).order_by(model.position.desc()).first()
            check_line_size(model(**values))
            line = model.create(document=self.id, position=(last.position + 1) if last else 1, **values)
            self.after_lines_changed()
            self.save_version()
            HistoryEvent.write(actor, self, "add_line", {"line": (None, _line_summary(line))})
        return line

    def update_line(self, actor, line_id, expected_version=None, **data):
        """Change a line's quantity, price, discount, tax or text; one event when something changed."""
        from .errors import NotFound
        from .history import HistoryEvent
        values = LineBase.clean(data, partial=True)
        model = self.line_model
        with self._editing_lines(expected_version):
            line = model.get_or_none((model.id == line_id) & (model.document == self.id))
            if line is None:
                raise NotFound("That line is not on this document.")
            if "description" in values and not values["description"] and not values.get("product"):
                from .errors import ValidationError
                raise ValidationError("The line could not be saved.",
                                      {"description": "Choose a product or describe the item."})
            product = values.get("product")
            if product is not None and product.id != line.product_id:  # another product: its VAT, not the last one's
                _take_product_vat(values, product)
            settle_exemption(values, line.tax_rate, line.tax_exemption)
            before = _line_summary(line)
            changed = False
            for key, value in values.items():
                if value is None and key != "product":
                    continue
                current = line.product_id if key == "product" else getattr(line, key)
                new = value.id if key == "product" and value is not None else value
                if current != new:
                    setattr(line, key, value)
                    changed = True
            if not changed:
                return False
            check_line_size(line)
            line.save()
            self.after_lines_changed()
            self.save_version()
            HistoryEvent.write(actor, self, "update_line", {"line": (before, _line_summary(line))})
        return True

    def remove_line(self, actor, line_id, expected_version=None):
        """Delete a line; one history event."""
        from .history import HistoryEvent
        model = self.line_model
        with self._editing_lines(expected_version):
            line = model.get_or_none((model.id == line_id) & (model.document == self.id))
            if line is None:
                return False
            summary = _line_summary(line)
            line.delete_instance()
            self.after_lines_changed()
            self.save_version()
            HistoryEvent.write(actor, self, "remove_line", {"line": (summary, None)})
        return True

    def move_line(self, actor, line_id, direction, expected_version=None):
        """Swap a line with its neighbour above ("up") or below ("down"); one history event."""
        from .history import HistoryEvent
        model = self.line_model
        with self._editing_lines(expected_version):
            rows = self.line_rows()
            index = next((i for i, row in enumerate(rows) if row.id == int(line_id)), None)
            other = None if index is None else index + (-1 if direction == "up" else 1)
            if index is None or other is None or not 0 <= other < len(rows):
                return False
            rows[index], rows[other] = rows[other], rows[index]
            for position, row in enumerate(rows, start=1):
                if row.position != position:
                    model.update(position=position).where(model.id == row.id).execute()
            self.save_version()
            HistoryEvent.write(actor, self, "move_line", {"line": (index + 1, other + 1)},
                               note=rows[other].description)
        return True

    def after_lines_changed(self):
        self.refresh_totals()


def _line_summary(line):
    """The line as the history shows it: quantity, item, price, its VAT (rate, or exemption and ground) and
    whether goods or services are supplied."""
    vat = f"VAT exempt: {line.tax_exemption}" if line.tax_exemption else f"VAT {Decimal(line.tax_rate).normalize():f} %"
    return f"{line.quantity.normalize():f} × {line.description} @ {line.unit_price}, {vat}, {line.supply}"
