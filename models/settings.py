"""Company settings (the block on documents) and gapless number sequences."""
from peewee import BlobField, CharField, Check, IntegerField, TextField

from .base import BaseModel, is_postgres
from .errors import ValidationError

SETTINGS_LIMITS = {"company_name": 200, "address": 1000, "vat_id": 40, "bank_details": 500,
                   "payment_terms_text": 500, "email": 254, "phone": 40}


class Settings(BaseModel):
    company_name = CharField(max_length=200, default="My Company")
    address = TextField(default="")
    vat_id = CharField(max_length=40, default="")
    email = CharField(max_length=254, default="")
    phone = CharField(max_length=40, default="")
    bank_details = TextField(default="")
    logo = BlobField(null=True)
    logo_mime = CharField(max_length=40, null=True)
    currency = CharField(max_length=3, default="EUR")
    quote_validity_days = IntegerField(default=30, constraints=[Check("quote_validity_days BETWEEN 1 AND 3650")])
    payment_terms_days = IntegerField(default=30, constraints=[Check("payment_terms_days BETWEEN 0 AND 3650")])
    payment_terms_text = TextField(default="Payment within 30 days of the invoice date.")
    rot_days_develop = IntegerField(default=14)
    rot_days_propose = IntegerField(default=10)
    rot_days_close = IntegerField(default=7)

    @classmethod
    def load(cls, default_currency="EUR"):
        """The single settings row, created on first use."""
        row = cls.select().order_by(cls.id).first()
        if row is None:
            row = cls.create(currency=default_currency)
        return row

    def rot_days(self, stage):
        """Days without activity after which a card in `stage` rots (None: never)."""
        if stage == "qualify":
            return 7
        return getattr(self, f"rot_days_{stage}", None)

    def validate(self):
        """Raise ValidationError naming fields that are too long or out of range."""
        errors = {}
        for name, limit in SETTINGS_LIMITS.items():
            if len(getattr(self, name) or "") > limit:
                errors[name] = f"At most {limit} characters."
        if not (self.currency or "").isalpha() or len(self.currency) != 3:
            errors["currency"] = "Use a three-letter ISO code such as EUR."
        for name in ("quote_validity_days", "payment_terms_days"):
            if not 0 <= int(getattr(self, name)) <= 3650:
                errors[name] = "Between 0 and 3650 days."
        if errors:
            raise ValidationError("Settings are not valid.", errors)


class NumberSequence(BaseModel):
    name = CharField(max_length=32, unique=True)
    last_value = IntegerField(default=0, constraints=[Check("last_value >= 0")])

    @classmethod
    def next_value(cls, name):
        """Allocate the next number of a sequence; call inside the write transaction that uses it.

        The UPDATE takes the row lock (PostgreSQL) or the database write lock (SQLite IMMEDIATE),
        so a rolled-back transaction gives its number back and concurrent issuers never share one.
        """
        if is_postgres():
            cls.insert(name=name, last_value=0).on_conflict_ignore().execute()
        elif not cls.select().where(cls.name == name).exists():
            cls.insert(name=name, last_value=0).execute()
        rows = list(cls.update(last_value=cls.last_value + 1).where(cls.name == name)
                    .returning(cls.last_value).execute())
        return rows[0].last_value
