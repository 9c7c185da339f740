"""The product catalog."""
from decimal import Decimal

from peewee import BooleanField, CharField, Check, DateTimeField, IntegerField, TextField

from .base import BaseModel, MoneyField, PercentField, now, write_transaction
from .history import HistoryEvent, Tracked
from .validation import Cleaner

UNITS = ("piece", "hour", "day", "month", "year", "licence", "user", "kg", "m", "set")
# What is supplied decides the VAT of a sale abroad: goods to an EU business are an exempt intra-Community
# supply (Art. 138 VAT Directive) and goods leaving the EU an exempt export (Art. 146); services to an EU
# business are reverse charged (Art. 196) and services to a business outside the EU are not taxed here (Art. 44).
SUPPLIES = (("services", "Service"), ("goods", "Goods"))
SUPPLY_KEYS = tuple(key for key, _ in SUPPLIES)
_SUPPLY_WORDS = {"service": "services", "services": "services", "good": "goods", "goods": "goods",
                 "dienstleistung": "services", "dienstleistungen": "services", "leistung": "services",
                 "sonstige leistung": "services", "ware": "goods", "waren": "goods", "lieferung": "goods"}


def with_supply_read(data):
    """`data` with a typed supply read as a SUPPLIES key ("Goods", "Service", their plurals and German
    words, any case)."""
    raw = (data or {}).get("supply")
    if isinstance(raw, str) and raw.strip().lower() in _SUPPLY_WORDS:
        return dict(data, supply=_SUPPLY_WORDS[raw.strip().lower()])
    return data


EXEMPTION_RATE_MESSAGE = ("Only an item without VAT can be exempt: set the tax rate to 0 % or leave the "
                          "exemption empty.")


def settle_exemption(values, rate, exemption):
    """The rule of a VAT exemption (an item or line exempt under, say, § 4 Nr. 21 UStG or Art. 132 of the VAT
    Directive; EN 16931 category E): it belongs to a 0 % rate. `values` are the changes, `rate` and
    `exemption` what the record holds. Raising the rate of an exempt item drops its exemption; an exemption
    given anew with a rate above 0 % is refused at the field (one sent unchanged, as a form sends all its
    fields, ends with the rate). Returns `values`."""
    from .errors import ValidationError
    new_rate = values.get("tax_rate")
    new_rate = rate if new_rate is None else new_rate
    if new_rate is not None and Decimal(new_rate) > 0:
        if values.get("tax_exemption") and values["tax_exemption"] != exemption:
            raise ValidationError("The VAT exemption does not fit the tax rate.",
                                  {"tax_exemption": EXEMPTION_RATE_MESSAGE})
        if exemption or values.get("tax_exemption"):
            values["tax_exemption"] = ""
    return values


class Product(Tracked, BaseModel):
    record_type = "product"

    sku = CharField(max_length=40, unique=True)
    name = CharField(max_length=200)
    description = TextField(default="")
    unit = CharField(max_length=20, default="piece")
    list_price = MoneyField(default=Decimal("0.00"), constraints=[Check("list_price >= 0")])
    tax_rate = PercentField(default=Decimal("19.00"), constraints=[Check("tax_rate >= 0")])
    tax_exemption = CharField(max_length=200, default="")  # the legal ground of a 0 % item's exemption
    supply = CharField(max_length=8, default="services")  # goods or services (SUPPLIES)
    active = BooleanField(default=True)
    version = IntegerField(default=1)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    @property
    def display_name(self):
        return f"{self.sku} {self.name}"

    @staticmethod
    def clean(data, partial=False):
        """Validate product input; returns the cleaned values."""
        c = Cleaner(with_supply_read(data), complete=not partial)
        c.text("sku", 40, required=True)
        c.text("name", 200, required=True)
        c.text("description", 5000, multiline=True)
        c.choice("unit", UNITS, required=True)
        c.money("list_price", required=True)
        c.decimal("tax_rate", 2, required=True, minimum=Decimal(0), maximum=Decimal(100))
        c.text("tax_exemption", 200)
        c.choice("supply", SUPPLY_KEYS, required=True)
        c.boolean("active")
        values = c.raise_if_errors("The product could not be saved.")
        return values if partial else settle_exemption(values, None, "")  # an update: see prepare_update

    @classmethod
    def create_product(cls, actor, **data):
        """Create a product (SKU unique) with a history event."""
        from peewee import IntegrityError

        from .errors import ValidationError
        taken = {"sku": "Another product already uses this SKU."}
        sku = str(data.get("sku") or "").strip()
        try:
            values = cls.clean(data)
        except ValidationError as exc:
            if sku and "sku" not in exc.fields and cls.select().where(cls.sku == sku).exists():
                exc.fields.update(taken)
            raise
        try:
            with write_transaction():
                if cls.select().where(cls.sku == values["sku"]).exists():
                    raise ValidationError("The product could not be saved.", taken)
                product = cls.create(**values)
                HistoryEvent.write(actor, product, "create")
        except IntegrityError:
            raise ValidationError("The product could not be saved.", taken) from None
        return product

    def prepare_update(self, values):
        from .errors import ValidationError
        settle_exemption(values, self.tax_rate, self.tax_exemption)
        sku = values.get("sku")
        if sku and sku != self.sku and Product.select().where((Product.sku == sku) & (Product.id != self.id)).exists():
            raise ValidationError("The product could not be saved.", {"sku": "Another product already uses this SKU."})
        return values

    @classmethod
    def active_products(cls):
        return cls.select().where(cls.active == True).order_by(cls.name)  # noqa: E712

    def set_active(self, actor, active, expected_version=None):
        """Deactivate (hide from the line editor) or reactivate the product; repeating changes nothing."""
        return self.update_fields(actor, expected_version=expected_version, active="1" if active else "")

    def open_opportunity_lines(self):
        """Lines of open opportunities that use this product (where it is in play now)."""
        from peewee import JOIN

        from .opportunity import Opportunity, OpportunityLine
        from .party import Account
        return (OpportunityLine.select(OpportunityLine, Opportunity, Account.id, Account.name)
                .join(Opportunity, on=(OpportunityLine.document == Opportunity.id))
                .join(Account, JOIN.LEFT_OUTER, on=(Opportunity.account == Account.id))
                .where((OpportunityLine.product == self.id) & (Opportunity.status == "open"))
                .order_by(Opportunity.estimated_close_date.asc(nulls="LAST"), OpportunityLine.id))
