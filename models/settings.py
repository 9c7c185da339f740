"""Company settings (the block on documents) and gapless number sequences."""
import hashlib
import re
import xml.etree.ElementTree as ElementTree

from peewee import BlobField, CharField, Check, IntegerField, TextField

from .base import BaseModel, first, is_postgres, prepared
from .errors import ValidationError
from .money import currency_problem

SETTINGS_LIMITS = {"company_name": 200, "address": 1000, "vat_id": 40, "tax_number": 40, "company_register": 120,
                   "legal_info": 240, "bank_details": 500, "payment_terms_text": 500, "email": 254, "phone": 40,
                   "email_quote_text": 5000, "email_invoice_text": 5000, "email_reminder_text": 5000,
                   "email_credit_text": 5000}
EMAIL_TEXTS = ("email_quote_text", "email_invoice_text", "email_reminder_text", "email_credit_text")
# The installation's one currency (the app's CURRENCY, set by create_app): screens and documents print it.
_installation = {"currency": "EUR"}


def use_currency(code):
    """Make `code` the currency every Settings row says (documents print it, like the screens)."""
    _installation["currency"] = code


SETTINGS_LINES = {"address": 5, "bank_details": 4, "legal_info": 2}  # what fits the letterhead and footer
_PRINTED_IN = {"address": "the letterhead and the footer", "bank_details": "the footer",
               "legal_info": "the footer"}
SETTINGS_TEXT = ("company_name", "address", "vat_id", "tax_number", "company_register", "legal_info",
                 "bank_details", "payment_terms_text")
SETTINGS_MULTILINE = ("address", "legal_info", "bank_details", "payment_terms_text")
SETTINGS_DAYS = {"quote_validity_days": (1, 3650), "payment_terms_days": (0, 3650),
                 "rot_days_develop": (1, 365), "rot_days_propose": (1, 365), "rot_days_close": (1, 365)}
LOGO_MAX_BYTES = 512 * 1024
LOGO_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
_SVG_FORBIDDEN = re.compile(rb"<!doctype|<!entity|<script|<foreignobject|javascript:|\son[a-z]+\s*=", re.I)


class Settings(BaseModel):
    record_type = "settings"

    company_name = CharField(max_length=200, default="My Company")
    address = TextField(default="")
    vat_id = CharField(max_length=40, default="")
    tax_number = CharField(max_length=40, default="")  # the tax office's number (EN 16931 BT-32), e.g. 93815/08152
    company_register = CharField(max_length=120, default="")  # register court and number (BT-30)
    legal_info = TextField(default="")  # what the law asks business letters to state, e.g. managing directors (BT-33)
    email = CharField(max_length=254, default="")
    phone = CharField(max_length=40, default="")
    bank_details = TextField(default="")
    logo = BlobField(null=True)
    logo_mime = CharField(max_length=40, null=True)
    currency = CharField(max_length=3, default="EUR")
    quote_validity_days = IntegerField(default=30, constraints=[Check("quote_validity_days BETWEEN 1 AND 3650")])
    payment_terms_days = IntegerField(default=30, constraints=[Check("payment_terms_days BETWEEN 0 AND 3650")])
    payment_terms_text = TextField(default="Payment within 30 days of the invoice date.")
    email_quote_text = TextField(default="")  # the company's text of emails carrying a quote ("": built in)
    email_invoice_text = TextField(default="")
    email_reminder_text = TextField(default="")
    email_credit_text = TextField(default="")
    rot_days_develop = IntegerField(default=14)
    rot_days_propose = IntegerField(default=10)
    rot_days_close = IntegerField(default=7)

    @classmethod
    def load(cls, logo=True):
        """The single settings row, created on first use. logo=False leaves the logo's bytes (up to
        512 KB) in the database: pages and board moves need the names and numbers, not the image; such
        a row says `has_logo` and refuses to be saved. Its currency is the installation's (`use_currency`),
        whatever an earlier version's settings form stored."""
        row = first(prepared((cls, "load", logo), lambda: (cls.select() if logo else cls.select_without("logo"))
                             .order_by(cls.id).limit(1)))
        if row is None:
            cls.create(currency=_installation["currency"])
            return cls.load(logo)
        row._logo_loaded = logo
        row.currency = _installation["currency"]
        return row

    _logo_loaded = True

    @property
    def has_logo(self):
        """True when a logo is stored (its type is stored with it, whether the bytes were loaded or not)."""
        return self.logo_mime is not None

    def save(self, *args, **kwargs):
        if not self._logo_loaded:
            raise RuntimeError("Settings loaded without the logo cannot be saved (the logo would be lost).")
        return super().save(*args, **kwargs)

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
        problem = currency_problem(self.currency)
        if problem:
            errors["currency"] = problem
        for name, (low, high) in SETTINGS_DAYS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not low <= value <= high:
                errors[name] = f"Between {low} and {high} days."
        if self.logo is not None and (self.logo_mime not in LOGO_TYPES or len(self.logo) > LOGO_MAX_BYTES):
            errors["logo"] = "The logo must be a PNG, JPEG or SVG image of at most 512 KB."
        if errors:
            raise ValidationError("Settings are not valid.", errors)

    @staticmethod
    def sniff_logo(data):
        """The MIME type of an uploaded logo, judged by its bytes (not its name); ValidationError if unfit."""
        def refuse(message):
            raise ValidationError("The logo could not be used.", {"logo": message})
        if not data:
            refuse("The file is empty.")
        if len(data) > LOGO_MAX_BYTES:
            refuse(f"The file is {len(data) // 1024} KB; a logo may be at most 512 KB.")
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return "image/png"
        if data.startswith(b"\xff\xd8\xff") and len(data) > 4 and 0xc0 <= data[3] <= 0xfe:
            return "image/jpeg"
        head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"<"):
            if _SVG_FORBIDDEN.search(data):
                refuse("This SVG contains scripts, event handlers or entity declarations; save it as a plain SVG.")
            try:
                root = ElementTree.fromstring(data)
            except (ElementTree.ParseError, ValueError):
                refuse("This SVG file is not well-formed XML.")
            if root.tag not in ("svg", "{http://www.w3.org/2000/svg}svg"):
                refuse("This XML file is not an SVG image.")
            return "image/svg+xml"
        refuse("Upload a PNG, JPEG or SVG image (the file content is not one of these).")

    @property
    def logo_description(self):
        """The logo as history shows it: type, size and fingerprint (None when there is none)."""
        if self.logo is None:
            return None
        return f"{self.logo_mime}, {len(self.logo)} bytes, {self.logo_etag}"

    @property
    def logo_etag(self):
        """A short fingerprint of the stored logo (for caching and cache-busting the image URL)."""
        return hashlib.sha256(self.logo).hexdigest()[:16] if self.logo else None

    def save_changes(self, actor, data, logo=None, remove_logo=False):
        """Validate and save the settings form (logo: uploaded bytes or None to keep); one event; True if changed."""
        from .base import write_transaction
        from .history import HistoryEvent
        from .validation import Cleaner
        c = Cleaner(data)
        for name in SETTINGS_TEXT:
            c.text(name, SETTINGS_LIMITS[name], required=name == "company_name",
                   multiline=name in SETTINGS_MULTILINE)
        c.email("email")
        c.phone("phone")
        for name, (low, high) in SETTINGS_DAYS.items():
            c.integer(name, required=True, minimum=low, maximum=high)
        values = c.values
        errors = dict(c.errors)
        for name, most in SETTINGS_LINES.items():
            if name in values and len([line for line in values[name].splitlines() if line.strip()]) > most:
                errors[name] = f"At most {most} lines: they are printed in {_PRINTED_IN[name]} of every document."
        from .mail import BUILT_IN_TEXTS, text_template_problem
        for name in EMAIL_TEXTS:
            c.text(name, SETTINGS_LIMITS[name], multiline=True)
            if name in c.errors:
                errors[name] = c.errors[name]
            elif name in c.values:
                text = (c.values[name] or "").replace("\r\n", "\n").strip()
                problem = text_template_problem(text)
                if problem:
                    errors[name] = problem
                # the built-in text (or none) is stored as "": it follows later improvements of the built-in one
                values[name] = "" if text == BUILT_IN_TEXTS[name] else text
        mime = None
        if logo is not None:
            try:
                mime = self.sniff_logo(logo)
            except ValidationError as exc:
                errors.update(exc.fields)
        if errors:
            raise ValidationError("The settings could not be saved.", errors)
        with write_transaction():
            fresh = type(self).get_locked(self.id)
            changes = {}
            for name, value in values.items():
                if getattr(fresh, name) != value:
                    changes[name] = (getattr(fresh, name), value)
                    setattr(fresh, name, value)
            old_logo = fresh.logo_description
            if mime is not None:
                fresh.logo, fresh.logo_mime = bytes(logo), mime
            elif remove_logo:
                fresh.logo, fresh.logo_mime = None, None
            if fresh.logo_description != old_logo:
                changes["logo"] = (old_logo, fresh.logo_description)
            fresh.validate()
            if not changes:
                return False
            fresh.save()
            HistoryEvent.write(actor, fresh, "update", changes)
        self.__data__ = dict(fresh.__data__)
        return True


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
