"""Input cleaning shared by every model method: collects field -> message, never writes."""
import datetime
import re

from .base import parse_decimal
from .errors import ValidationError

EMAIL_RE = re.compile(r"^[^@\s<>\x00-\x1f\x7f]+@[^@\s<>\x00-\x1f\x7f]+\.[^@\s<>\x00-\x1f\x7f]+$")
PHONE_RE = re.compile(r"^[0-9+()./\- ]{3,40}$")
# Characters no text field takes: control characters (tab, and line breaks in multi-line fields, aside),
# lone surrogates and the non-characters U+FFFE/U+FFFF. They have no meaning to a person, break XML
# (Factur-X invoices) and CSV exports, and are how hostile input hides.
FORBIDDEN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Invisible direction overrides: they make a name or a line description read differently from what is
# stored (U+202E prints "abc" as "cba" on screens and documents). Right-to-left text needs none of them; the
# embeddings, isolates and marks that text copied from a word processor or a chat carries stay welcome.
DIRECTION_OVERRIDES = re.compile("[\u202d\u202e]")
MIN_DATE = datetime.date(2000, 1, 1)
MAX_DATE = datetime.date(2100, 12, 31)
_MISSING = object()


def text_problem(value, multiline=False):
    """Why `value` cannot be stored as text (None when it can): control characters, or line breaks
    where one line is expected."""
    if FORBIDDEN_TEXT.search(value):
        return "Contains control characters that are not allowed."
    if DIRECTION_OVERRIDES.search(value):
        return "Contains an invisible direction override (U+202D or U+202E), which would print the text reversed."
    if not multiline and ("\n" in value or "\r" in value):
        return "Use a single line (no line breaks)."
    return None


class Cleaner:
    """Cleans the given keys of `data`; keys that are absent are left out of `values`."""

    def __init__(self, data, complete=False):
        """complete=True: the input is a whole record (a create), so a required text field that is
        absent is an error; otherwise (an update) only the keys present are checked."""
        self.data = data or {}
        self.complete = complete
        self.errors = {}
        self.values = {}

    def _raw(self, name):
        value = self.data.get(name, _MISSING)
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else ""
        return value

    def _blank(self, value):
        return value is None or (isinstance(value, str) and not value.strip())

    def _filled(self, name, required, key):
        """The raw input when given and not blank; a blank is stored as None (or flagged if required)."""
        raw = self._raw(name)
        if raw is _MISSING:
            return _MISSING
        if self._blank(raw):
            if required:
                self.errors[name] = "This field is required."
            else:
                self._store(name, key, None)
            return _MISSING
        return raw

    def _store(self, name, key, value):
        self.values[key or name] = value

    def text(self, name, max_length=200, required=False, key=None, multiline=False):
        raw = self._raw(name)
        if raw is _MISSING:
            if required and self.complete:
                self.errors[name] = "This field is required."
            return
        value = "" if raw is None else str(raw)
        value = value.strip() if not multiline else value.strip("\n\r ")
        problem = text_problem(value, multiline)
        if problem:
            self.errors[name] = problem
        elif required and not value:
            self.errors[name] = "This field is required."
        elif len(value) > max_length:
            self.errors[name] = f"At most {max_length} characters (you entered {len(value)})."
        else:
            self._store(name, key, value)

    def email(self, name, required=False, key=None):
        raw = self._raw(name)
        if raw is _MISSING:
            return
        value = ("" if raw is None else str(raw)).strip().lower()
        if not value:
            if required:
                self.errors[name] = "This field is required."
            else:
                self._store(name, key, "")
        elif len(value) > 254 or not EMAIL_RE.match(value):
            self.errors[name] = "Enter a valid email address, such as name@example.com."
        else:
            self._store(name, key, value)

    def phone(self, name, key=None):
        raw = self._raw(name)
        if raw is _MISSING:
            return
        value = ("" if raw is None else str(raw)).strip()
        if value and not PHONE_RE.match(value):
            self.errors[name] = "Enter a phone number (digits, spaces, + - ( ) . /)."
        else:
            self._store(name, key, value)

    def decimal(self, name, places=2, required=False, minimum=None, maximum=None, key=None):
        raw = self._filled(name, required, key)
        if raw is _MISSING:
            return
        try:
            self._store(name, key, parse_decimal(raw, places, minimum, maximum))
        except ValueError as exc:
            self.errors[name] = str(exc)

    def money(self, name, required=False, minimum=0, key=None):
        self.decimal(name, 2, required, minimum, 10 ** 12, key)

    def date(self, name, required=False, minimum=MIN_DATE, maximum=MAX_DATE, key=None):
        raw = self._filled(name, required, key)
        if raw is _MISSING:
            return
        if isinstance(raw, datetime.datetime):
            value = raw.date()
        elif isinstance(raw, datetime.date):
            value = raw
        else:
            try:
                value = datetime.date.fromisoformat(str(raw).strip()[:10])
            except ValueError:
                self.errors[name] = "Enter a date as YYYY-MM-DD."
                return
        if not minimum <= value <= maximum:
            self.errors[name] = f"Enter a date between {minimum} and {maximum}."
            return
        self._store(name, key, value)

    def choice(self, name, choices, required=False, key=None):
        raw = self._raw(name)
        if raw is _MISSING:
            return
        value = "" if raw is None else str(raw).strip()
        if not value:
            if required:
                self.errors[name] = "Choose one."
            else:
                self._store(name, key, None)
        elif value not in choices:
            self.errors[name] = "Choose one of: " + ", ".join(str(c) for c in choices) + "."
        else:
            self._store(name, key, value)

    def boolean(self, name, key=None):
        raw = self._raw(name)
        if raw is _MISSING:
            return
        value = raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "on", "yes")
        self._store(name, key, value)

    def integer(self, name, required=False, minimum=None, maximum=None, key=None):
        raw = self._filled(name, required, key)
        if raw is _MISSING:
            return
        try:
            text = str(raw).strip()
            if len(text) > 12:
                raise ValueError
            value = int(text)
        except ValueError:
            self.errors[name] = "Enter a whole number."
            return
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.errors[name] = f"Enter a number from {minimum} to {maximum}."
            return
        self._store(name, key, value)

    def record(self, name, model, required=False, key=None, label="record"):
        """A foreign id that must name an existing row of `model`."""
        raw = self._filled(name, required, key)
        if raw is _MISSING:
            return
        if isinstance(raw, model):
            self._store(name, key, raw)
            return
        try:
            text = str(raw).strip()
            if len(text) > 12:
                raise ValueError
            pk = int(text)
        except ValueError:
            self.errors[name] = f"Unknown {label}."
            return
        row = model.get_or_none(model.id == pk)
        if row is None:
            self.errors[name] = f"Unknown {label}."
        else:
            self._store(name, key, row)

    def fail(self, name, message):
        self.errors[name] = message

    def raise_if_errors(self, message="Please correct the highlighted fields."):
        if self.errors:
            raise ValidationError(message, self.errors)
        return self.values
