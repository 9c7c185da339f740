"""Accounts (companies) and contacts (people)."""
from peewee import JOIN, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField, fn

from .base import BaseModel, now, write_transaction
from .history import HistoryEvent, Tracked
from .user import User
from .validation import Cleaner
from .access import owned

COUNTRY_DEFAULT = "DE"

# ISO 3166-1 alpha-2 codes as EN 16931 takes them (its country code list, with XI for Northern Ireland):
# a country an e-invoice can name
COUNTRY_CODES_ISO = frozenset((
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT "
    "BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH "
    "ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT "
    "HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS "
    "LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI "
    "NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG "
    "SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG "
    "UM US UY UZ VA VC VE VG VI VN VU WF WS XI YE YT ZA ZM ZW "
).split())
_NOT_CODES = {"UK": "the United Kingdom's is GB", "EL": "Greece's is GR (EL is its VAT prefix)"}


def _clean_country(c):
    """A two-letter country code (ISO 3166), stored upper-case: documents and e-invoices need it so."""
    c.text("country", 2)
    country = c.values.get("country")
    if country:
        code = country.upper()
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            del c.values["country"]
            c.fail("country", "Use a two-letter country code such as DE.")
        elif code not in COUNTRY_CODES_ISO:
            del c.values["country"]
            c.fail("country", f"{code} is not a country code: {_NOT_CODES.get(code, 'use one such as DE, AT or GB')}.")
        else:
            c.values["country"] = code


def _deals(field_name, record, limit=50):
    """The opportunities, quotes, orders and invoices whose `field_name` (account/contact) is `record`."""
    from .invoice import Invoice
    from .opportunity import Opportunity
    from .order import Order
    from .quote import Quote
    result = {}
    for key, model in (("opportunities", Opportunity), ("quotes", Quote), ("orders", Order),
                       ("invoices", Invoice)):
        result[key] = list(model.select().where(getattr(model, field_name) == record.id)
                           .order_by(model.created_at.desc(), model.id.desc()).limit(limit))
    return result


class Postal:
    """Address fields shared by accounts and contacts."""

    @property
    def display_name(self):
        return self.name

    @property
    def address_lines(self):
        """Street, postal code + city, country: the lines of a postal address."""
        city = " ".join(p for p in (self.postal_code, self.city) if p)
        return [line for line in (self.street, city, self.country) if line]

    @staticmethod
    def clean_postal(c):
        """Add the address fields to a Cleaner."""
        c.text("street", 200)
        c.text("postal_code", 20)
        c.text("city", 100)
        _clean_country(c)


class Account(Postal, Tracked, BaseModel):
    record_type = "account"

    name = CharField(max_length=200, index=True)
    vat_id = CharField(max_length=40, default="")
    email = CharField(max_length=254, default="")
    phone = CharField(max_length=40, default="")
    website = CharField(max_length=200, default="")
    street = CharField(max_length=200, default="")
    postal_code = CharField(max_length=20, default="")
    city = CharField(max_length=100, default="")
    country = CharField(max_length=2, default=COUNTRY_DEFAULT)
    owner = ForeignKeyField(User, null=True, backref="accounts", on_delete="SET NULL")
    version = IntegerField(default=1)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    @classmethod
    def access_rule(cls, user, write=False):
        """Who may see / change it: see models/access.py."""
        return owned(cls.owner, user, write)

    @staticmethod
    def clean(data, partial=False):
        """Validate account input; returns the cleaned values."""
        c = Cleaner(data, complete=not partial)
        c.text("name", 200, required=True)
        c.text("vat_id", 40)
        c.email("email")
        c.phone("phone")
        c.text("website", 200)
        Postal.clean_postal(c)
        c.record("owner", User, label="user")
        return c.raise_if_errors("The account could not be saved.")

    @classmethod
    def create_account(cls, actor, **data):
        """Create an account from user input (validated) with a history event."""
        values = cls.clean(data)
        with write_transaction():
            account = cls.create(owner=actor, **values)
            HistoryEvent.write(actor, account, "create")
        return account

    def deals(self, limit=50):
        """This account's opportunities, quotes, orders and invoices, newest first."""
        return _deals("account", self, limit)

    def contact_list(self):
        """The people at this account, by name."""
        return Contact.select().where(Contact.account == self.id).order_by(Contact.name, Contact.id)

    @classmethod
    def matching_name(cls, name):
        """Accounts whose name equals `name`, ignoring case and surrounding spaces."""
        key = (name or "").strip().lower()
        return cls.select().where(fn.LOWER(fn.TRIM(cls.name)) == key).order_by(cls.id)


class Contact(Postal, Tracked, BaseModel):
    record_type = "contact"

    name = CharField(max_length=200)
    job_title = CharField(max_length=120, default="")
    email = CharField(max_length=254, default="", index=True)
    phone = CharField(max_length=40, default="")
    account = ForeignKeyField(Account, null=True, backref="contacts", on_delete="SET NULL")
    street = CharField(max_length=200, default="")
    postal_code = CharField(max_length=20, default="")
    city = CharField(max_length=100, default="")
    country = CharField(max_length=2, default=COUNTRY_DEFAULT)
    notes = TextField(default="")
    owner = ForeignKeyField(User, null=True, backref="contacts", on_delete="SET NULL")
    version = IntegerField(default=1)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    @classmethod
    def access_rule(cls, user, write=False):
        """Who may see / change it: see models/access.py."""
        return owned(cls.owner, user, write)

    @staticmethod
    def clean(data, partial=False):
        """Validate contact input; returns the cleaned values."""
        c = Cleaner(data, complete=not partial)
        c.text("name", 200, required=True)
        c.text("job_title", 120)
        c.email("email")
        c.phone("phone")
        c.record("account", Account, label="account")
        Postal.clean_postal(c)
        c.record("owner", User, label="user")
        c.text("notes", 5000, multiline=True)
        return c.raise_if_errors("The contact could not be saved.")

    @classmethod
    def create_contact(cls, actor, **data):
        """Create a contact from user input (validated) with a history event."""
        values = cls.clean(data)
        with write_transaction():
            contact = cls.create(owner=actor, **values)
            HistoryEvent.write(actor, contact, "create")
        return contact

    def deals(self, limit=50):
        """This contact's opportunities, quotes, orders and invoices, newest first."""
        return _deals("contact", self, limit)

    @classmethod
    def matching_email(cls, email):
        """Contacts with this email (case-insensitive)."""
        key = (email or "").strip().lower()
        if not key:
            return cls.select().where(cls.id < 0)
        return (cls.select(cls, Account).join(Account, JOIN.LEFT_OUTER)
                .where(fn.LOWER(cls.email) == key).order_by(cls.id))
