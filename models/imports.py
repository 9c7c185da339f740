"""Imports of leads, accounts, contacts and products from CSV, XLSX and vCard files.

An import is a job (a row of ImportJob) that lives in the database, its file under the instance folder:
upload (encoding, delimiter and header are worked out) -> mapping of columns to fields (guessed from the
headers) -> preview (the first rows checked by the model's own clean()) -> run, one bounded chunk of rows
per call of `ImportJob.step()` -> report (one ImportResult per row). The position in the file is a byte
offset kept on the job, so any worker of any process can do the next chunk; nothing stays in memory
between calls. Each chunk is written in one transaction together with the job's new position, so a
chunk is never written twice and a crash loses at most the chunk being written.

Modes: "all" (all or nothing) checks every row first, chunk by chunk, and writes only when no row is
invalid; "valid" writes the valid rows and reports the others. Duplicates (leads and contacts by email,
accounts by name or VAT id, products by SKU; in the database within the user's reach, and within the
file) are skipped, updated or created again, as the user chose.
"""
import codecs
import csv
import datetime
import io
import json
import os
import re
import secrets
import time
import unicodedata

from peewee import BigIntegerField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField, fn

from .access import user_id_of, visible_where
from .base import BaseModel, db, now, refresh_statistics, write_transaction
from .catalog import Product
from .errors import DomainError, NotAllowed, ValidationError
from .history import HistoryEvent
from .lead import Lead
from .party import Account, Contact
from .user import User
from .vcard import COLUMNS as VCARD_COLUMNS, VCardError, iter_cards, looks_like_vcard
from .xlsx import Workbook, XlsxError

MAX_BYTES = 32 * 1024 * 1024
MAX_COLUMNS = 200
MAX_LINE_BYTES = 1024 * 1024
MAX_XLSX_ROWS = 100000
MAX_FILES = 500  # vCard files in one upload
PREVIEW_ROWS = 20
CHUNK_ROWS = 1000
CHUNK_SECONDS = 2.0
INSERT_BATCH = 400
FORMATS = {"csv": "CSV", "txt": "CSV", "tsv": "CSV", "xlsx": "XLSX", "vcf": "vCard", "vcard": "vCard"}
POLICIES = {"skip": "Skip the row (keep the existing record)",
            "update": "Update the existing record with the row's non-empty values",
            "create": "Create a new record anyway"}
MODES = {"all": "All or nothing: if any row is invalid, nothing is imported",
         "valid": "Only the valid rows: invalid rows are skipped and listed in the report"}
MULTILINE_FIELDS = ("notes", "description")  # fields that keep line breaks; others get them joined by ", "
_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
STATUSES = ("uploaded", "mapped", "running", "done", "failed", "cancelled")
ABANDONED_DAYS = 7  # an upload never started is cancelled and its file removed after this
STALLED_DAYS = 30  # a running import nobody came back to, likewise
OUTCOMES = ("created", "updated", "skipped", "invalid")


class FileProblem(ValidationError):
    """An uploaded file that cannot be imported (empty, binary, unreadable, too large…)."""

    def __init__(self, message, status=422):
        super().__init__(message, {"file": message})
        self.status = status


class Field:
    """A field rows can be mapped to: its name in the model's clean(), label and header synonyms."""

    def __init__(self, name, label, synonyms=(), required=False):
        self.name, self.label, self.required = name, label, required
        self.synonyms = {normalize_header(s) for s in (name, label) + tuple(synonyms)}


def normalize_header(text):
    """'E-Mail-Adresse ' -> 'emailadresse': lower case, ß -> ss, accents and punctuation dropped."""
    text = unicodedata.normalize("NFKD", str(text or "").strip().lower().replace("ß", "ss"))
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


NAME = ("full name", "fullname", "contact", "contact name", "person", "name", "display name", "kontakt")
FIRST = ("first name", "firstname", "given name", "forename", "vorname", "prenom", "prénom")
LAST = ("last name", "lastname", "surname", "family name", "nachname", "familienname", "nom")
COMPANY = ("company", "company name", "firma", "firmenname", "organization", "organisation", "org",
           "unternehmen", "account", "account name", "employer", "business")
TITLE = ("title", "job title", "position", "role", "jobtitle", "funktion", "berufsbezeichnung")
EMAIL = ("email", "e-mail", "mail", "email address", "e-mail address", "e-mail-adresse", "emailadresse",
         "work email", "primary email")
PHONE = ("phone", "tel", "tel.", "telephone", "telefon", "mobile", "phone number", "handy", "mobil", "cell",
         "telefonnummer", "work phone", "business phone")
STREET = ("street", "address", "strasse", "straße", "address line 1", "street address", "adresse", "anschrift")
POSTAL = ("zip", "zip code", "postal code", "postcode", "plz", "postleitzahl")
CITY = ("city", "town", "ort", "stadt", "locality")
COUNTRY = ("country", "land", "country code", "staat")
NOTES = ("notes", "note", "comments", "comment", "notiz", "notizen", "bemerkung", "bemerkungen", "remarks")

KIND_FIELDS = {
    "lead": [
        Field("name", "Name", NAME, required=True), Field("first_name", "First name", FIRST),
        Field("last_name", "Last name", LAST), Field("company", "Company", COMPANY),
        Field("job_title", "Job title", TITLE), Field("email", "Email", EMAIL), Field("phone", "Phone", PHONE),
        Field("topic", "Topic / need", ("subject", "need", "interest", "thema", "anliegen", "bedarf")),
        Field("budget_amount", "Budget", ("budget", "amount", "budget amount", "betrag")),
        Field("purchase_timeframe", "Purchase timeframe", ("timeframe", "zeitrahmen", "purchase timeframe")),
        Field("rating", "Rating", ("bewertung", "temperature")),
        Field("decision_maker_known", "Decision maker known", ("decision maker", "entscheider")),
        Field("private_buyer", "Private buyer", ("private", "privat", "privatkunde")),
        Field("notes", "Notes", NOTES + ("description",)),
    ],
    "account": [
        Field("name", "Name", COMPANY + ("name",), required=True),
        Field("vat_id", "VAT id", ("vat", "vat id", "vat number", "vat no", "ust-id", "ustid", "ust-idnr",
                                   "ustidnr", "tax id", "umsatzsteuer-id")),
        Field("email", "Email", EMAIL), Field("phone", "Phone", PHONE),
        Field("website", "Website", ("web", "url", "homepage", "www", "webseite", "internet")),
        Field("street", "Street", STREET), Field("postal_code", "Postal code", POSTAL),
        Field("city", "City", CITY), Field("country", "Country", COUNTRY),
    ],
    "contact": [
        Field("name", "Name", NAME, required=True), Field("first_name", "First name", FIRST),
        Field("last_name", "Last name", LAST), Field("job_title", "Job title", TITLE),
        Field("email", "Email", EMAIL), Field("phone", "Phone", PHONE),
        Field("company", "Company (linked to an existing account)", COMPANY),
        Field("street", "Street", STREET), Field("postal_code", "Postal code", POSTAL),
        Field("city", "City", CITY), Field("country", "Country", COUNTRY), Field("notes", "Notes", NOTES),
    ],
    "product": [
        Field("sku", "SKU", ("article number", "artikelnummer", "art nr", "artnr", "item number", "item no",
                             "product code", "part number", "code", "sku"), required=True),
        Field("name", "Name", ("product", "product name", "artikel", "bezeichnung", "item", "produkt", "name"),
              required=True),
        Field("description", "Description", ("beschreibung", "details", "text")),
        Field("unit", "Unit", ("einheit", "uom", "unit of measure")),
        Field("list_price", "List price", ("price", "list price", "unit price", "preis", "listenpreis",
                                           "net price", "nettopreis", "vk"), required=True),
        Field("tax_rate", "Tax rate %", ("tax", "tax rate", "vat rate", "vat", "vat %", "mwst", "ust", "tax %",
                                         "steuersatz")),
        Field("tax_exemption", "VAT exemption (legal ground)", ("exemption", "tax exemption", "vat exemption",
                                                                 "exemption reason", "steuerbefreiung")),
        Field("supply", "Goods or service", ("goods or service", "supply", "goods/services", "type of supply",
                                             "leistungsart")),
        Field("active", "Active", ("aktiv", "enabled", "status")),
    ],
}
KIND_LABELS = {"lead": ("lead", "leads"), "account": ("account", "accounts"), "contact": ("contact", "contacts"),
               "product": ("product", "products")}
DUPLICATE_RULES = {"lead": "same email", "contact": "same email", "account": "same name (any case) or VAT id",
                   "product": "same SKU"}


def field_map(kind):
    return {f.name: f for f in KIND_FIELDS[kind]}


def guess_mapping(kind, header):
    """A field name (or '') for each column, guessed from the headers: exact synonyms first, then a
    header that contains a synonym; each field is used at most once."""
    fields = KIND_FIELDS[kind]
    keys = [normalize_header(h) for h in header]
    mapping = [""] * len(header)
    used = set()
    for pass_ in ("exact", "contains"):
        for index, key in enumerate(keys):
            if mapping[index] or not key:
                continue
            for f in fields:
                if f.name in used:
                    continue
                hit = key in f.synonyms if pass_ == "exact" else any(
                    len(s) >= 4 and (s in key) for s in f.synonyms)
                if hit:
                    mapping[index] = f.name
                    used.add(f.name)
                    break
    if "name" in used and {"first_name", "last_name"} & used and kind in ("lead", "contact"):
        pass  # a full name column wins; first / last name stay mapped and fill in when it is blank
    return mapping


def check_mapping(kind, mapping):
    """Refuse a mapping that uses a field twice or leaves a required field unmapped (field -> message)."""
    fields = field_map(kind)
    errors, seen = {}, {}
    for index, name in enumerate(mapping):
        if not name:
            continue
        if name not in fields:
            errors[f"col{index}"] = "Choose a field from the list."
        elif name in seen:
            errors[f"col{index}"] = f"{fields[name].label} is already taken by column {seen[name] + 1}."
        else:
            seen[name] = index
    for f in fields.values():
        if f.required and f.name not in seen:
            if f.name == "name" and kind in ("lead", "contact") and ({"first_name", "last_name"} & set(seen)):
                continue
            errors["mapping"] = f"Map a column to {f.label}: every {KIND_LABELS[kind][0]} needs it."
            break
    if errors:
        raise ValidationError("The column mapping is not complete.", errors)


# ---------------------------------------------------------------------------------------------
# Reading files: encoding, delimiter, rows from a byte offset (streamed, never the whole file)

def sniff_encoding(path):
    """('utf-8' | 'cp1252', bytes to skip for a BOM); FileProblem for binary or undecodable files."""
    with open(path, "rb") as fh:
        head = fh.read(4)
        if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
            raise FileProblem("The file is UTF-16 text: save it as UTF-8 (or 'CSV UTF-8') and upload it again.")
        skip = 3 if head.startswith(codecs.BOM_UTF8) else 0
        fh.seek(skip)
        start = fh.read(1 << 16)
        controls = sum(1 for byte in start if byte < 32 and byte not in (9, 10, 13))
        if controls > max(2, len(start) // 100):
            raise FileProblem("This is a binary file, not text: upload a CSV, XLSX or vCard file.")
        for encoding in ("utf-8", "cp1252"):
            fh.seek(skip)
            decoder = codecs.getincrementaldecoder(encoding)()
            try:
                for block in iter(lambda: fh.read(1 << 16), b""):
                    if b"\x00" in block:
                        raise FileProblem("This is a binary file, not text: upload a CSV, XLSX or vCard file.")
                    decoder.decode(block)
                decoder.decode(b"", final=True)
                return encoding, skip
            except UnicodeDecodeError:
                continue
    raise FileProblem("The text encoding of the file is not UTF-8 or Windows-1252: save it as UTF-8.")


def sniff_delimiter(sample):
    """',', ';' or tab: csv.Sniffer on the first lines, else the most frequent in the header line."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        counts = {d: first.count(d) for d in (",", ";", "\t")}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _lines(fh, encoding):
    """Decoded lines of a binary file from its current position (line length bounded)."""
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES:
            raise FileProblem("A line of the file is longer than 1 MB: is this really a CSV file?")
        yield raw.decode(encoding)


def csv_records(fh, encoding, delimiter, offset):
    """(cells, byte offset after the record) for each CSV record from `offset`; quoted fields may span lines."""
    fh.seek(offset)
    reader = csv.reader(_lines(fh, encoding), delimiter=delimiter)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileProblem(f"The CSV file is malformed near record {reader.line_num}: {exc}.") from None
        yield cells, fh.tell()


def vcard_records(fh, offset):
    """(cells in VCARD_COLUMNS order, byte offset after the card) for each card from `offset`."""
    try:
        for card, end in iter_cards(fh, offset):
            yield [card.get(c, "") for c in VCARD_COLUMNS], end
    except VCardError as exc:
        raise FileProblem(str(exc)) from None


def extension_of(filename):
    """'Leads.CSV' -> 'csv' ('' without one)."""
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def check_file_count(count):
    """FileProblem (413) when more files come at once than one import takes."""
    if count > MAX_FILES:
        raise FileProblem(f"At most {MAX_FILES} files at once: upload the rest in another import.", 413)


def combine_vcards(uploads, target):
    """Write the cards of several .vcf files [(path, file name)] into one file `target`, in order.

    Each file must be a vCard file of its own (checked by its name and first bytes, and named in the
    refusal). Values are decoded card by card, so files in UTF-8 and in Windows-1252 can be mixed; a
    UTF-8 byte-order mark is dropped, UTF-16 is refused as for a single file."""
    with open(target, "wb") as out:
        for path, name in uploads:
            if FORMATS.get(extension_of(name)) != "vCard":
                raise FileProblem(f"{name}: several files at once can only be vCard (.vcf) files; "
                                  "upload a CSV or XLSX file on its own.", 415)
            with open(path, "rb") as fh:
                head = fh.read(4096)
                if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
                    raise FileProblem(f"{name} is UTF-16 text: save it as UTF-8 and upload it again.")
                if not looks_like_vcard(head):
                    raise FileProblem(f"{name} is not a vCard file (it does not start with BEGIN:VCARD).")
                fh.seek(3 if head.startswith(codecs.BOM_UTF8) else 0)
                tail = b""
                for block in iter(lambda: fh.read(1 << 16), b""):
                    out.write(block)
                    tail = (tail + block)[-256:]
            if tail.rstrip().rsplit(b"\n", 1)[-1].strip().upper() != b"END:VCARD":
                # (its last card would swallow the next file's first card)
                raise FileProblem(f"{name} is cut off: its last card has no END:VCARD line.")
            out.write(b"\r\n")


def xlsx_to_csv(source, target):
    """Copy the first worksheet of an XLSX file into a UTF-8 CSV file, row by row (models/xlsx.py:
    streamed, bounded memory; cells as a person would type them, dates as ISO dates)."""
    try:
        workbook = Workbook(source)
    except XlsxError as exc:
        raise FileProblem(str(exc)) from None
    try:
        count = 0
        with open(target, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            for row in workbook.rows(max_columns=MAX_COLUMNS):
                count += 1
                if count > MAX_XLSX_ROWS + 1:
                    raise FileProblem(f"XLSX imports take at most {MAX_XLSX_ROWS:,} rows: save the sheet as CSV "
                                      "(any size up to the upload limit).")
                writer.writerow(row)
        return count
    except XlsxError as exc:
        raise FileProblem(str(exc)) from None
    finally:
        workbook.close()


def prepare_upload(path, filename, directory, token):
    """Check an uploaded file and work out how to read it. Returns the job fields: format, stored name,
    encoding, delimiter, header, sample rows, data offset, size. FileProblem on bad files."""
    size = os.path.getsize(path)
    if size == 0:
        raise FileProblem("The file is empty.")
    extension = extension_of(filename)
    if extension not in FORMATS:
        raise FileProblem("Upload a .csv, .xlsx or .vcf file (this file's name ends in "
                          f"{'.' + extension if extension else 'no extension'}).", 415)
    with open(path, "rb") as fh:
        head = fh.read(8)
    fields = {"size": size, "filename": filename[:200]}
    if extension == "xlsx":
        if not head.startswith(b"PK\x03\x04"):
            raise FileProblem("This file is named .xlsx but is not an Excel workbook.")
        stored = f"{token}.csv"
        xlsx_to_csv(path, os.path.join(directory, stored))
        os.remove(path)
        path = os.path.join(directory, stored)
        fields.update(source_format="xlsx", stored_name=stored, encoding="utf-8", delimiter=",",
                      size=os.path.getsize(path))  # progress is measured in the converted file
    else:
        if head.startswith(b"PK\x03\x04") or head.startswith(b"\xd0\xcf\x11\xe0"):
            raise FileProblem("This looks like a spreadsheet file, not text: save it as .xlsx or CSV.")
        encoding, skip = sniff_encoding(path)
        fields.update(encoding=encoding + (" (BOM)" if skip else ""), stored_name=os.path.basename(path))
        if extension in ("vcf", "vcard"):
            with open(path, "rb") as fh:
                if not looks_like_vcard(fh.read(4096)):
                    raise FileProblem("This .vcf file does not start with BEGIN:VCARD.")
            fields.update(source_format="vcf", delimiter="", header=list(VCARD_COLUMNS), data_offset=0)
        else:
            with open(path, "rb") as fh:
                fh.seek(skip)
                sample = fh.read(64 * 1024).decode(encoding, "ignore")
            if not sample.strip():
                raise FileProblem("The file has no text in it.")
            delimiter = "\t" if extension == "tsv" else sniff_delimiter(sample)
            fields.update(source_format="csv", delimiter=delimiter)
    fields["encoding"] = fields["encoding"] or "utf-8"
    job = ImportJob(**{k: v for k, v in fields.items() if k in ImportJob._meta.fields})
    if job.source_format != "vcf":
        job.data_offset = 3 if job.encoding.endswith("(BOM)") else 0
        header, offset = None, job.data_offset
        with open(path, "rb") as fh:
            for cells, end in csv_records(fh, job.text_encoding, job.delimiter, job.data_offset):
                offset = end
                if any(c.strip() for c in cells):
                    header = cells
                    break
        if header is None:
            raise FileProblem("The file has no header row.")
        if len(header) > MAX_COLUMNS:
            raise FileProblem(f"The file has {len(header)} columns; at most {MAX_COLUMNS} are supported.")
        fields["header"] = _header_names(header)
        fields["data_offset"] = offset
        job.data_offset = offset
    sample = []
    with open(path, "rb") as fh:
        for number, cells, _ in job.records(fh, job.data_offset, fields_row_start(job)):
            sample.append([number, cells])
            if len(sample) >= PREVIEW_ROWS:
                break
    if not sample:
        raise FileProblem("The file has a header but no rows to import." if job.source_format != "vcf"
                          else "The file has no cards (BEGIN:VCARD … END:VCARD).")
    fields["sample"] = sample
    return fields


def fields_row_start(job):
    """The number of the first data row: 2 in a sheet with a header (row 1), 1 for the first card."""
    return 1 if job.source_format == "vcf" else 2


def _header_names(cells):
    names = []
    for index, cell in enumerate(cells):
        text = (cell or "").replace("\ufeff", "").strip()[:100]
        names.append(text or f"Column {index + 1}")
    return names


# ---------------------------------------------------------------------------------------------
# Kinds: how a row becomes input for the model, what a duplicate is, how records are written

class RowOutcome:
    """What happens to one row: its number, the cleaned values or the errors, the duplicate found."""

    __slots__ = ("number", "data", "shown", "values", "errors", "duplicate", "duplicate_row", "outcome", "message",
                 "record_id", "label", "merge_into")

    def __init__(self, number, data):
        self.number, self.data, self.shown = number, data, dict(data)
        self.values, self.errors = None, {}
        self.duplicate, self.duplicate_row = None, None
        self.outcome, self.message, self.record_id, self.label, self.merge_into = None, "", None, "", None

    @property
    def is_duplicate(self):
        return not self.errors and (self.duplicate is not None or bool(self.duplicate_row))


class Kind:
    """The model side of importing one kind of record."""

    model = None
    name = None
    defaults = {}

    def __init__(self, user):
        self.user = user

    def row_data(self, mapping, cells):
        """The row as input for the model: mapped, non-blank cells, first + last name joined."""
        data = {}
        for index, field in enumerate(mapping):
            if field and index < len(cells):
                value = cells[index] or ""
                if field in MULTILINE_FIELDS:
                    value = value.strip("\r\n ")
                else:  # a street on two lines in a vCard, an Alt+Enter in a spreadsheet cell
                    value = _LINE_BREAKS.sub(", ", value.strip())
                if value:
                    data[field] = value
        first, last = data.pop("first_name", ""), data.pop("last_name", "")
        if not data.get("name") and (first or last):
            data["name"] = " ".join(p for p in (first, last) if p)
        return data

    def label(self, data):
        name = data.get("name") or ""
        email = data.get("email") or ""
        return (f"{name} <{email}>" if name and email else name or email)[:200]

    def clean(self, data, partial=False):
        """The model's own validation; returns values to store (ValidationError with field -> message)."""
        return self.model.clean(data, partial=partial)

    def create_input(self, data):
        full = dict(self.defaults)
        full.update(data)
        for f in KIND_FIELDS[self.name]:
            if f.required:
                full.setdefault(f.name, "")
        return full

    def keys(self, values):
        """Duplicate keys of a row's cleaned values (none: the row cannot be a duplicate)."""
        email = (values.get("email") or "").strip().lower()
        return [("email", email)] if email else []

    def existing(self, keys):
        """{key: record} for records within the user's reach that match any of `keys`."""
        emails = [v for k, v in keys if k == "email"]
        if not emails:
            return {}
        query = self.model.select().where(self.model.email.in_(emails)).order_by(self.model.id)
        reach = visible_where(self.model, self.user)
        if reach is not None:
            query = query.where(reach)
        found = {}
        for record in query:
            found.setdefault(("email", (record.email or "").lower()), record)
        return found

    def writable_ids(self, ids):
        """The ids among `ids` the user may change."""
        condition = visible_where(self.model, self.user, write=True)
        if not ids:
            return set()
        query = self.model.select(self.model.id).where(self.model.id.in_(list(ids)))
        if condition is not None:
            query = query.where(condition)
        return {r.id for r in query}

    def prepare(self, outcomes):
        """Look-ups a chunk needs before its rows are cleaned (none by default)."""

    def insert_values(self, values, stamp):
        row = dict(values)
        row.setdefault("owner", self.user.id)
        if row.get("owner") is not None:
            row["owner"] = user_id_of(row["owner"])
        row.update(created_at=stamp, updated_at=stamp)
        return row

    history_stage = None


class LeadKind(Kind):
    model, name = Lead, "lead"
    history_stage = "qualify"

    def clean(self, data, partial=False):
        data = dict(data)
        data.pop("owner", None)
        if not partial:
            data["source"] = "import"
        return Lead.clean(data, partial=partial)

    def insert_values(self, values, stamp):
        row = super().insert_values(values, stamp)
        row.update(source="import", status="open", stage_entered_at=stamp)
        return row


class ContactKind(Kind):
    model, name = Contact, "contact"

    def prepare(self, outcomes):
        """Link rows to existing accounts by company name (within reach); unknown names go to notes."""
        names = {o.data["company"].strip().lower() for o in outcomes if o.data.get("company")}
        accounts = {}
        if names:
            query = Account.select().where(fn.LOWER(fn.TRIM(Account.name)).in_(list(names))).order_by(Account.id)
            reach = visible_where(Account, self.user)
            if reach is not None:
                query = query.where(reach)
            for account in query:
                accounts.setdefault(account.name.strip().lower(), account)
        for o in outcomes:
            company = o.data.pop("company", None)
            if not company:
                continue
            account = accounts.get(company.strip().lower())
            if account is not None:
                o.data["account"] = account
            else:
                o.data["notes"] = "\n".join(p for p in (o.data.get("notes"), f"Company: {company}") if p)

    def clean(self, data, partial=False):
        data = dict(data)
        data.pop("owner", None)
        data.pop("company", None)
        return Contact.clean(data, partial=partial)


class AccountKind(Kind):
    model, name = Account, "account"

    def label(self, data):
        return (data.get("name") or data.get("vat_id") or "")[:200]

    def clean(self, data, partial=False):
        data = dict(data)
        data.pop("owner", None)
        return Account.clean(data, partial=partial)

    @staticmethod
    def _vat(value):
        return re.sub(r"[\s.\-]", "", value or "").upper()

    def keys(self, values):
        keys = []
        if (values.get("name") or "").strip():
            keys.append(("name", values["name"].strip().lower()))
        if self._vat(values.get("vat_id")):
            keys.append(("vat", self._vat(values.get("vat_id"))))
        return keys

    def existing(self, keys):
        names = [v for k, v in keys if k == "name"]
        vats = [v for k, v in keys if k == "vat"]
        if not names and not vats:
            return {}
        condition = None
        if names:
            condition = fn.LOWER(fn.TRIM(Account.name)).in_(names)
        if vats:
            vat_match = fn.UPPER(fn.REPLACE(fn.REPLACE(Account.vat_id, " ", ""), ".", "")).in_(vats)
            condition = vat_match if condition is None else condition | vat_match
        query = Account.select().where(condition).order_by(Account.id)
        reach = visible_where(Account, self.user)
        if reach is not None:
            query = query.where(reach)
        found = {}
        for record in query:
            found.setdefault(("name", record.name.strip().lower()), record)
            if self._vat(record.vat_id):
                found.setdefault(("vat", self._vat(record.vat_id)), record)
        return found


class ProductKind(Kind):
    model, name = Product, "product"
    defaults = {"unit": "piece", "tax_rate": "19"}

    def create_input(self, data):
        """A row that names a VAT exemption and no rate is at 0 % (an exempt item has no VAT)."""
        full = super().create_input(data)
        if full.get("tax_exemption") and "tax_rate" not in data:
            full["tax_rate"] = "0"
        return full

    def label(self, data):
        return " ".join(p for p in (data.get("sku"), data.get("name")) if p)[:200]

    def keys(self, values):
        sku = (values.get("sku") or "").strip()
        return [("sku", sku)] if sku else []

    def existing(self, keys):
        skus = [v for k, v in keys if k == "sku"]
        if not skus:
            return {}
        return {("sku", p.sku): p for p in Product.select().where(Product.sku.in_(skus))}

    def writable_ids(self, ids):
        return set(ids)  # the catalog is shared

    def insert_values(self, values, stamp):
        row = dict(values)
        row.update(created_at=stamp, updated_at=stamp)
        return row


KINDS = {"lead": LeadKind, "account": AccountKind, "contact": ContactKind, "product": ProductKind}
VCARD_KINDS = ("lead", "contact")


# ---------------------------------------------------------------------------------------------
# The job

class ImportJob(BaseModel):
    """One import: the uploaded file (under the instance folder), the mapping, the choices, the position
    reached and the counts. Only its owner (and admins) may see or run it."""

    owner = ForeignKeyField(User, backref="imports", on_delete="CASCADE")
    kind = CharField(max_length=16, default="lead")
    source_format = CharField(max_length=8, default="csv")
    filename = CharField(max_length=200, default="")
    stored_name = CharField(max_length=100, default="")
    size = BigIntegerField(default=0)
    encoding = CharField(max_length=20, default="utf-8")
    delimiter = CharField(max_length=1, default=",")
    header_json = TextField(default="[]")
    sample_json = TextField(default="[]")
    mapping_json = TextField(default="[]")
    policy = CharField(max_length=8, default="skip")
    mode = CharField(max_length=8, default="valid")
    status = CharField(max_length=12, default="uploaded")
    phase = CharField(max_length=12, default="")
    data_offset = BigIntegerField(default=0)
    position = BigIntegerField(default=0)
    rows_read = IntegerField(default=0)
    created_count = IntegerField(default=0)
    updated_count = IntegerField(default=0)
    skipped_count = IntegerField(default=0)
    invalid_count = IntegerField(default=0)
    message = TextField(default="")
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)
    finished_at = DateTimeField(null=True)

    class Meta:
        table_name = "import_job"
        indexes = ((("owner", "created_at"), False),)

    @classmethod
    def access_rule(cls, user, write=False):
        """An import is its owner's (an admin sees all of them)."""
        if user is not None and user.role == "admin":
            return None
        return cls.owner == (user.id if user is not None else 0)

    @classmethod
    def for_user(cls, job_id, user):
        """The job if the user may see it, else None (callers answer 404)."""
        query = cls.select().where(cls.id == job_id)
        condition = cls.access_rule(user)
        if condition is not None:
            query = query.where(condition)
        return query.first()

    @classmethod
    def recent(cls, user, limit=20):
        query = cls.select().order_by(cls.created_at.desc(), cls.id.desc()).limit(limit)
        condition = cls.access_rule(user)
        return query.where(condition) if condition is not None else query

    # --- file and layout
    @property
    def header(self):
        return json.loads(self.header_json or "[]")

    @property
    def sample(self):
        return json.loads(self.sample_json or "[]")

    @property
    def mapping(self):
        return json.loads(self.mapping_json or "[]")

    @property
    def text_encoding(self):
        return self.encoding.split(" ")[0]

    @property
    def format_label(self):
        return {"xlsx": "XLSX", "vcf": "vCard", "csv": "CSV"}.get(self.source_format, self.source_format)

    @property
    def encoding_label(self):
        return self.encoding.replace("utf-8", "UTF-8").replace("cp1252", "Windows-1252")

    @property
    def delimiter_label(self):
        return {",": "comma", ";": "semicolon", "\t": "tab"}.get(self.delimiter, "")

    @property
    def kind_label(self):
        return KIND_LABELS[self.kind]

    @property
    def fields(self):
        return KIND_FIELDS[self.kind]

    @property
    def kinds(self):
        """What this file can be imported as (vCards: people only)."""
        return VCARD_KINDS if self.source_format == "vcf" else tuple(KINDS)

    @property
    def row_word(self):
        return "Card" if self.source_format == "vcf" else "Row"

    def path(self, directory):
        return os.path.join(directory, self.stored_name)

    def records(self, fh, offset, first_number):
        """(row number, cells, byte offset after it) from `offset`; blank rows are skipped but counted."""
        source = vcard_records(fh, offset) if self.source_format == "vcf" else \
            csv_records(fh, self.text_encoding, self.delimiter, offset)
        number = first_number - 1
        for cells, end in source:
            number += 1
            if not any((c or "").strip() for c in cells):
                continue
            yield number, cells, end

    @property
    def progress(self):
        """Percent of the work done (checking and writing are half each in all-or-nothing mode)."""
        if self.status == "done":
            return 100
        span = max(1, self.size - self.data_offset)
        done = max(0, min(1, (self.position - self.data_offset) / span)) if self.phase else 0
        if self.mode == "all":
            return int((done if self.phase == "validate" else 1 + done) * 50) if self.phase else 0
        return int(done * 100)

    @property
    def finished(self):
        return self.status in ("done", "failed", "cancelled")

    @property
    def may_cancel(self):
        """False while an all-or-nothing import writes its (all valid) rows: it cannot stop halfway."""
        return not self.finished and not (self.status == "running" and self.mode == "all" and self.phase == "write")

    # --- steps
    @classmethod
    def create_from_uploads(cls, actor, kind, uploads, directory):
        """Register uploaded files [(path, file name)] as one import: a single file of any format, or
        several vCard files (a folder of business cards), whose cards are read as one file."""
        check_file_count(len(uploads))
        if len(uploads) == 1:
            return cls.create_from_upload(actor, kind, *uploads[0], directory)
        os.makedirs(directory, exist_ok=True)
        combined = os.path.join(directory, f"upload-{secrets.token_hex(8)}.vcf.part")
        try:
            combine_vcards(uploads, combined)
            label = f"{uploads[0][1][:120]} and {len(uploads) - 1} more vCard file{'s' if len(uploads) > 2 else ''}"
            return cls.create_from_upload(actor, kind, combined, "cards.vcf", directory, label=label)
        finally:
            if os.path.exists(combined):
                os.remove(combined)

    @classmethod
    def create_from_upload(cls, actor, kind, path, filename, directory, label=None):
        """Register an uploaded file (moved under `directory`) as a new import of `kind` records
        (`label`: the name to show instead of the file's)."""
        if kind not in KINDS:
            raise ValidationError("Choose what to import.", {"kind": "Choose leads, accounts, contacts or products."})
        os.makedirs(directory, exist_ok=True)
        token = secrets.token_hex(12)
        extension = extension_of(filename)
        stored = os.path.join(directory, f"{token}.{extension if extension in FORMATS else 'dat'}")
        os.replace(path, stored) if os.path.dirname(path) == directory else _copy(path, stored)
        try:
            fields = prepare_upload(stored, filename, directory, token)
            if fields["source_format"] == "vcf" and kind not in VCARD_KINDS:
                raise ValidationError("vCards import into leads or contacts.",
                                      {"kind": "Choose leads or contacts for a vCard file."})
        except BaseException:
            for leftover in (stored, os.path.join(directory, f"{token}.csv")):
                if os.path.exists(leftover):
                    os.remove(leftover)
            raise
        header = fields.pop("header")
        sample = fields.pop("sample")
        if label:
            fields["filename"] = label[:200]
        with write_transaction():
            job = cls.create(owner=actor, kind=kind, header_json=json.dumps(header), sample_json=json.dumps(sample),
                             mapping_json=json.dumps(guess_mapping(kind, header)), **fields)
        return job

    def _lock_for_mapping(self):
        """Re-read the job under its lock (inside a write transaction); NotAllowed once it started or ended."""
        self.reload_locked()
        if self.status == "cancelled":
            raise NotAllowed("This import was cancelled; upload the file again to import it.")
        if self.status not in ("uploaded", "mapped"):
            raise NotAllowed("This import has already started; what it imports and how can no longer change.")

    def choose_kind(self, kind):
        """Import the rows as another kind of record: the mapping is guessed again for its fields."""
        if kind not in self.kinds:
            raise ValidationError("Choose what to import.", {"kind": "Choose one of: " + ", ".join(
                KIND_LABELS[k][1] for k in self.kinds) + "."})
        with write_transaction():
            self._lock_for_mapping()
            self.kind, self.status = kind, "uploaded"
            self.mapping_json = json.dumps(guess_mapping(kind, self.header))
            self.updated_at = now()
            self.save()

    def set_mapping(self, kind, mapping):
        """Choose the kind of records and the field of each column (checked); back to the preview."""
        if kind not in KINDS:
            raise ValidationError("Choose what to import.", {"kind": "Choose leads, accounts, contacts or products."})
        header = self.header
        mapping = [(m or "").strip() for m in list(mapping)[:len(header)]]
        mapping += [""] * (len(header) - len(mapping))
        check_mapping(kind, mapping)
        with write_transaction():
            self._lock_for_mapping()
            self.kind, self.mapping_json, self.status = kind, json.dumps(mapping), "mapped"
            self.updated_at = now()
            self.save()

    def preview(self):
        """The sample rows as they would be imported: cleaned values or errors per field, duplicates."""
        kind = KINDS[self.kind](self.owner)
        mapping = self.mapping
        outcomes = [RowOutcome(number, kind.row_data(mapping, cells)) for number, cells in self.sample]
        kind.prepare(outcomes)
        _clean_rows(kind, outcomes)
        _find_duplicates(kind, outcomes, self)
        return outcomes

    def start(self, actor, policy, mode):
        """Fix the duplicate policy and the mode, and start running (chunks are done by step())."""
        errors = {}
        if policy not in POLICIES:
            errors["policy"] = "Choose what to do with duplicates."
        elif policy == "create" and self.kind == "product":
            errors["policy"] = "Products are unique by SKU: choose skip or update."
        if mode not in MODES:
            errors["mode"] = "Choose all or nothing, or only the valid rows."
        if errors:
            raise ValidationError("Choose how to import.", errors)
        if self.status == "running" or self.finished:
            return False
        if self.status != "mapped":
            raise NotAllowed("Map the columns and look at the preview first.")
        with write_transaction():
            locked = ImportJob.get_locked(self.id)
            if locked.status != "mapped":
                return False
            self.policy, self.mode, self.status = policy, mode, "running"
            self.phase = "validate" if mode == "all" else "write"
            self.position = self.data_offset
            self.rows_read = 0
            self.updated_at = now()
            self.save()
        return True

    def step(self, directory, chunk_rows=CHUNK_ROWS, seconds=CHUNK_SECONDS):
        """Do the next chunk of the import (at most `chunk_rows` rows or about `seconds` of reading);
        returns True when this call did work. Safe to call from several workers at once: a chunk is
        committed together with the job's new position, and a call that finds the position moved
        (another worker did that chunk) writes nothing."""
        if self.status != "running":
            return False
        path = self.path(directory)
        try:
            source = open(path, "rb")
        except FileNotFoundError:  # removed by a cancel (or by hand) since this job was read
            self._finish("failed", "The uploaded file is no longer there; upload it again.")
            return True
        kind = KINDS[self.kind](self.owner)
        start = (self.phase, self.position, self.rows_read)
        outcomes, end, eof = [], self.position, True
        first = fields_row_start(self) + self.rows_read
        last = first - 1
        deadline = time.monotonic() + seconds
        mapping = self.mapping
        with source as fh:
            for number, cells, after in self.records(fh, self.position, first):
                outcomes.append(RowOutcome(number, kind.row_data(mapping, cells)))
                end, last = after, number
                if len(outcomes) >= chunk_rows or time.monotonic() > deadline:
                    eof = False
                    break
        kind.prepare(outcomes)
        _clean_rows(kind, outcomes)
        with write_transaction():
            locked = ImportJob.get_locked(self.id)
            if locked.status != "running" or (locked.phase, locked.position, locked.rows_read) != start:
                self.__data__ = dict(locked.__data__)
                return False
            if self.phase == "validate":
                invalid = [o for o in outcomes if o.errors]
                for o in invalid:
                    o.outcome, o.message = "invalid", _error_text(o.errors)
                _store_results(self, invalid)
                self.invalid_count += len(invalid)
            else:
                _find_duplicates(kind, outcomes, self)
                _write(kind, outcomes, self)
                for name in OUTCOMES:
                    setattr(self, f"{name}_count", getattr(self, f"{name}_count")
                            + sum(1 for o in outcomes if o.outcome == name))
            self.position, self.rows_read, self.updated_at = end, last - fields_row_start(self) + 1, now()
            if eof:
                self._advance_phase()
            self.save()
        if self.finished:
            _remove(path)
            if self.created_count:
                refresh_statistics(force=True)  # the tables grew: let SQLite's planner know
        return True

    def _advance_phase(self):
        if self.phase == "validate":
            if self.invalid_count:
                self.status, self.finished_at = "failed", now()
                self.message = (f"Nothing was imported: {self.invalid_count:,} row(s) are invalid. Correct them "
                                "in the file and upload it again, or import only the valid rows.")
            else:
                self.phase, self.position, self.rows_read = "write", self.data_offset, 0
        else:
            self.status, self.finished_at = "done", now()
            plural = KIND_LABELS[self.kind][1]
            self.message = (f"{self.created_count:,} {plural} imported, {self.updated_count:,} updated, "
                            f"{self.skipped_count:,} skipped, {self.invalid_count:,} invalid.")

    def cancel(self, directory):
        """Stop the import where it is and remove its file. Before anything was written nothing is
        imported; an import of only the valid rows keeps the chunks it already saved (and says so)."""
        with write_transaction():
            self.reload_locked()
            if self.finished:
                return False
            if not self.may_cancel:
                raise NotAllowed("Every row was valid and they are being saved now: an all-or-nothing import "
                                 "cannot stop halfway. It finishes in a moment.")
            self._end_cancelled("Stopped" if self.kept_records else "Cancelled")
        _remove(self.path(directory))
        return True

    @property
    def kept_records(self):
        """True when rows were already saved (an import of the valid rows, stopped while writing)."""
        return bool(self.created_count or self.updated_count)

    @property
    def cancel_effect(self):
        """What cancelling now does, said beside the button."""
        if self.status == "running" and self.phase == "write":
            return "Rows saved so far stay; the rest of the file is not read."
        return "Nothing has been saved yet; the uploaded file is deleted."

    @property
    def has_report(self):
        """False for an import cancelled before it read a row (there is nothing to report)."""
        return self.status != "cancelled" or self.rows_read > 0

    def _end_cancelled(self, headline):
        """Mark the (locked) job cancelled; the message says what was kept."""
        if self.kept_records:
            rows = "cards" if self.source_format == "vcf" else "rows"
            self.message = (f"{headline} after {self.rows_read:,} {rows}: the {self.created_count:,} imported and "
                            f"{self.updated_count:,} updated before that stay; the rest of the file was not read.")
        else:
            self.message = f"{headline}: nothing was imported."
        self.status, self.finished_at, self.updated_at = "cancelled", now(), now()
        self.save()

    @classmethod
    def purge_abandoned(cls, directory):
        """Cancel uploads not started within ABANDONED_DAYS and imports left running for STALLED_DAYS,
        removing their files; and remove temporary files of uploads that were interrupted."""
        moment = now()
        abandoned = moment - datetime.timedelta(days=ABANDONED_DAYS)
        stalled = moment - datetime.timedelta(days=STALLED_DAYS)

        def stale(job):
            return job.updated_at < (stalled if job.status == "running" else abandoned) and not job.finished
        for job in cls.select().where((cls.status.in_(["uploaded", "mapped"]) & (cls.updated_at < abandoned))
                                      | ((cls.status == "running") & (cls.updated_at < stalled))):
            with write_transaction():
                job.reload_locked()
                if not stale(job):  # worked on since the list was read
                    continue
                job._end_cancelled(f"Not started within {ABANDONED_DAYS} days, cancelled" if job.status != "running"
                                   else f"Left unfinished for {STALLED_DAYS} days, stopped")
            _remove(job.path(directory))
        cutoff = time.time() - 24 * 3600
        for name in (os.listdir(directory) if os.path.isdir(directory) else []):
            path = os.path.join(directory, name)
            try:
                if name.startswith("upload-") and name.endswith(".part") and os.path.getmtime(path) < cutoff:
                    os.remove(path)
            except OSError:  # another upload removed its own file meanwhile
                pass

    def _finish(self, status, message):
        with write_transaction():
            self.reload_locked()
            if self.finished:  # cancelled meanwhile: that stays
                return
            self.status, self.message, self.finished_at, self.updated_at = status, message, now(), now()
            self.save()

    def run_all(self, directory, chunk_rows=CHUNK_ROWS):
        """Run every remaining chunk (the model-level loop the benchmark and tests use)."""
        while self.status == "running":
            self.step(directory, chunk_rows=chunk_rows, seconds=3600)
        return self

    def issues(self, limit=200):
        """The rows that did not simply become new records (updated, skipped, invalid), for the report page."""
        return self.results().where(ImportResult.outcome != "created").limit(limit)

    def results(self):
        return ImportResult.select().where(ImportResult.job == self.id).order_by(ImportResult.row, ImportResult.id)

    def report_lines(self):
        """The report as CSV text, line by line (streamed from the database)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def take():
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text
        writer.writerow([self.row_word.lower(), "outcome", "record", "record_id", "label", "reason"])
        yield take()
        for result in self.results().iterator():
            writer.writerow([result.row, result.outcome, self.kind if result.record_id else "",
                             result.record_id or "", _safe_cell(result.label), _safe_cell(result.message)])
            yield take()


class ImportResult(BaseModel):
    """What happened to one row of an import (the report)."""

    job = ForeignKeyField(ImportJob, backref="result_rows", on_delete="CASCADE")
    row = IntegerField()
    outcome = CharField(max_length=8)
    record_id = IntegerField(null=True)
    label = CharField(max_length=200, default="")
    message = TextField(default="")

    class Meta:
        table_name = "import_result"
        indexes = ((("job", "row"), False), (("job", "record_id"), False))


def _copy(source, target):
    import shutil
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _safe_cell(text):
    """A report cell that a spreadsheet will not run as a formula."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _error_text(errors):
    """{field: message} as one sentence per field: 'Email: Enter a valid… Budget amount: Must be…'"""
    return " ".join(f"{name.replace('_', ' ').capitalize()}: {message}" for name, message in errors.items())


def _clean_rows(kind, outcomes):
    """Run the model's own validation on every row (errors field -> message, never a write)."""
    for o in outcomes:
        o.label = kind.label(o.data)
        try:
            o.values = kind.clean(kind.create_input(o.data))
        except ValidationError as exc:
            o.errors = dict(exc.fields) or {"row": exc.message}


def _find_duplicates(kind, outcomes, job):
    """Mark rows that match a record in the database (within the user's reach) or an earlier row of the
    file: o.duplicate is the record, o.duplicate_row the earlier row's number."""
    valid = [o for o in outcomes if not o.errors]
    all_keys = {key for o in valid for key in kind.keys(o.values)}
    existing = kind.existing(list(all_keys)) if all_keys else {}
    from_file = {}
    ids = {r.id for r in existing.values()}
    if ids and job.id:
        for result in ImportResult.select(ImportResult.row, ImportResult.record_id).where(
                (ImportResult.job == job.id) & ImportResult.record_id.in_(list(ids))):
            from_file.setdefault(result.record_id, result.row)
    seen = {}
    for o in valid:
        keys = kind.keys(o.values)
        match = next((key for key in keys if key in existing), None)
        if match is not None:
            o.duplicate = existing[match]
            o.duplicate_row = from_file.get(o.duplicate.id)
        else:
            match = next((key for key in keys if key in seen), None)
            if match is not None:
                o.duplicate_row, o.merge_into = seen[match].number, seen[match]
        for key in keys:
            seen.setdefault(key, o)


def duplicate_text(kind_name, o):
    """A person's words for the duplicate a row matches."""
    if o.duplicate is not None and o.duplicate_row:
        return f"Same as row {o.duplicate_row} of this file ({kind_name} #{o.duplicate.id})"
    if o.duplicate is not None:
        return f"Matches existing {kind_name} #{o.duplicate.id} ({getattr(o.duplicate, 'display_name', '')})"
    if o.duplicate_row:
        return f"Same as row {o.duplicate_row} of this file"
    return ""


def _write(kind, outcomes, job):
    """Write one chunk: creates in bulk (records + one history event each), updates one by one through
    the model's update_fields(); every row gets its outcome. Runs inside the chunk's transaction."""
    actor = kind.user
    stamp = now()
    creates = []
    writable = kind.writable_ids({o.duplicate.id for o in outcomes if o.duplicate is not None})
    for o in outcomes:
        if o.errors:
            o.outcome, o.message = "invalid", _error_text(o.errors)
            continue
        duplicate = o.duplicate is not None or o.duplicate_row
        if not duplicate or job.policy == "create":
            if duplicate and kind.name == "product":
                o.outcome, o.message = "skipped", "Another product already uses this SKU."
                continue
            o.outcome = "created"
            o.message = duplicate_text(kind.name, o) + " — created anyway" if duplicate else ""
            creates.append(o)
            continue
        if job.policy == "skip":
            o.outcome, o.message = "skipped", "Duplicate: " + duplicate_text(kind.name, o)
            continue
        if o.duplicate is None:  # the same key as an earlier row of this chunk
            target = o.merge_into
            while target.duplicate is None and target.merge_into is not None:
                target = target.merge_into
            if target.duplicate is not None:
                _update_existing(kind, o, target.duplicate, writable)
            elif target.outcome == "created":
                merged = dict(target.data)
                merged.update(o.data)
                try:
                    target.values = kind.clean(kind.create_input(merged))
                    target.data = merged
                    o.outcome, o.message = "updated", f"Merged into row {target.number} of this file"
                except ValidationError as exc:
                    o.outcome, o.message = "invalid", _error_text(exc.fields) or exc.message
            else:
                o.outcome, o.message = "skipped", "Duplicate: " + duplicate_text(kind.name, o)
            continue
        _update_existing(kind, o, o.duplicate, writable)
    ids = insert_rows(kind.model, [kind.insert_values(o.values, stamp) for o in creates], returning=True)
    events = []
    for o, record_id in zip(creates, ids):
        o.record_id = record_id
        events.append({"at": stamp, "actor": actor.id, "record_type": kind.name, "record_id": record_id,
                       "action": "create", "to_stage": kind.history_stage,
                       "note": f"Imported from {job.filename} ({job.row_word.lower()} {o.number})"})
    insert_rows(HistoryEvent, events)
    for o in outcomes:
        if o.outcome == "updated" and o.record_id is None and o.merge_into is not None and o.duplicate is None:
            target = o.merge_into
            while target.record_id is None and target.merge_into is not None:
                target = target.merge_into
            o.record_id = target.record_id
    _store_results(job, outcomes)


def _update_existing(kind, o, record, writable):
    """Policy 'update': the row's non-empty values go into the existing record through update_fields()
    (the model's validation, owner rules and one history event)."""
    o.record_id = record.id
    if record.id not in writable:
        o.outcome = "skipped"
        o.message = f"Matches {kind.name} #{record.id}, which you may see but not change."
        return
    data = {k: v for k, v in o.data.items() if k not in ("owner", "company")}
    try:
        changed = type(record).get_by_id(record.id).update_fields(kind.user, **data)
    except DomainError as exc:
        o.outcome, o.message = "invalid", _error_text(exc.fields) or exc.message
        return
    if changed:
        o.outcome, o.message = "updated", f"Updated {kind.name} #{record.id}"
    else:
        o.outcome, o.message = "skipped", f"{kind.name.capitalize()} #{record.id} is already up to date"


def _store_results(job, outcomes):
    insert_rows(ImportResult, [{"job": job.id, "row": o.number, "outcome": o.outcome, "record_id": o.record_id,
                                "label": (o.label or "")[:200], "message": o.message or ""}
                               for o in outcomes if o.outcome])


def insert_rows(model, rows, returning=False):
    """Multi-row INSERTs of plain dicts (missing fields take their defaults), values converted by each
    field's db_value; returns the new ids in row order when `returning`. The SQL is written here because
    peewee's insert_many spends most of a 1000-row chunk building it."""
    if not rows:
        return []
    database = db.obj
    quote = database.quote[0]
    fields = [f for f in model._meta.sorted_fields if not f.primary_key]
    defaults = {f.name: (f.default() if callable(f.default) else f.default) for f in fields}
    columns = ", ".join(f"{quote}{f.column_name}{quote}" for f in fields)
    one = "(" + ", ".join([database.param] * len(fields)) + ")"
    head = f"INSERT INTO {quote}{model._meta.table_name}{quote} ({columns}) VALUES "
    tail = f" RETURNING {quote}{model._meta.primary_key.column_name}{quote}" if returning else ""
    ids = []
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start:start + INSERT_BATCH]
        params = [f.db_value(row[f.name] if f.name in row else defaults[f.name]) for row in batch for f in fields]
        cursor = database.execute_sql(head + ", ".join([one] * len(batch)) + tail, params)
        if returning:
            ids.extend(r[0] for r in cursor.fetchall())
    return ids
