"""Quote and invoice PDFs: Jinja templates under templates/documents/ rendered by WeasyPrint.

Issued documents are frozen: the bytes rendered at activation (quote) / issue (invoice) are stored
with their SHA-256 and served as stored; anything without stored bytes renders live with a DRAFT
watermark. Issued invoices are PDF/A-3b carrying their Factur-X (EN 16931) XML.

WeasyPrint is imported on the first render (it costs ~0.7 s) and kept for the life of the process;
importing this module renders nothing and imports nothing heavy.
"""
import base64
import collections
import contextvars
import datetime
import hashlib
import importlib
import math
import os
import re
import threading
import unicodedata
from decimal import Decimal

from .base import done_outside_lock, today
from .money import currency_problem, format_money, line_tax, round_money
from .countries import COUNTRY_ALIASES, ISO_COUNTRY_NAMES
from .party import COUNTRY_CODES_ISO

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES_DIR = os.path.join(ROOT, "templates")
STATIC_DIR = os.path.realpath(os.path.join(ROOT, "static"))

EU_COUNTRIES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
VAT_PREFIX_COUNTRY = {"EL": "GR", "XI": "GB"}
COUNTRY_NAMES = dict(ISO_COUNTRY_NAMES,  # printed in capitals as an address's last line abroad
                     XI="Northern Ireland")  # the EU's code for it (VAT ids, EN 16931's list); the postcode says it too
# The names read as a country at the end of the seller's address (no VAT id): those of Europe and a few others,
# not every ISO name ("Georgia", "Jordan" or "Mexico" end many a US address as a state or a city).
ADDRESS_COUNTRIES = ("AT BE BG CH CY CZ DE DK EE ES FI FR GB GR HR HU IE IS IT LI LT LU LV MT NL NO PL PT RO SE SI "
                     "SK US CA AU JP XI").split()
COUNTRY_CODES = dict({COUNTRY_NAMES[code].lower(): code for code in ADDRESS_COUNTRIES}, **COUNTRY_ALIASES)

# Units as typed on lines -> UN/ECE Recommendation 20 codes (BT-130); anything else is C62 ("one").
UNIT_CODES = {
    "piece": "H87", "pieces": "H87", "pc": "H87", "pcs": "H87", "each": "H87", "ea": "H87", "item": "H87",
    "hour": "HUR", "hours": "HUR", "h": "HUR", "hr": "HUR", "hrs": "HUR", "minute": "MIN", "minutes": "MIN",
    "day": "DAY", "days": "DAY", "week": "WEE", "weeks": "WEE", "month": "MON", "months": "MON",
    "year": "ANN", "years": "ANN", "yr": "ANN", "kg": "KGM", "g": "GRM", "t": "TNE", "m": "MTR", "km": "KMT",
    "m2": "MTK", "m²": "MTK", "m3": "MTQ", "m³": "MTQ", "l": "LTR", "litre": "LTR", "liter": "LTR",
    "set": "SET", "sets": "SET", "kwh": "KWH",
}

# VAT category (UNTDID 5305) of a line -> the label of its tax row on documents.
CATEGORY_NOTE = {"S": "", "Z": "zero rated", "E": "exempt", "AE": "reverse charge", "K": "intra-Community supply",
                 "G": "tax-free export"}
SERVICES_OUTSIDE_EU_NOTE = "not taxable in the EU"  # a G row of services only
# (category, what is supplied) -> the exemption reason of the e-invoice (BT-120), its code (BT-121) and
# the statement the document must make (VAT Directive 2006/112/EC, Art. 226); E: the line's own ground.
EXEMPTION_TEXT = {
    ("AE", "services"): ("Reverse charge", "VATEX-EU-AE",
                         "Reverse charge: the recipient is liable for the VAT (Art. 196 Council Directive 2006/112/EC)."),
    ("K", "goods"): ("Intra-Community supply", "VATEX-EU-IC",
                     "Tax-free intra-Community supply of goods (Art. 138 Council Directive 2006/112/EC)."),
    ("G", "goods"): ("Export outside the EU", "VATEX-EU-G",
                     "Tax-free export of goods outside the EU (Art. 146 Council Directive 2006/112/EC)."),
    ("G", "services"): ("Not taxable in the EU: place of supply outside the EU", "",
                        "Not taxable in the EU: the place of supply is outside the EU (Art. 44 Council Directive "
                        "2006/112/EC)."),
}

_weasy = None
_weasy_lock = threading.Lock()
_env = None
_thread_tools = threading.local()
DRAFT_PDFS_KEPT = 32
_draft_pdfs = collections.OrderedDict()
_draft_pdfs_lock = threading.Lock()
_facturx = None
_pdf_timestamp = contextvars.ContextVar("pdf_timestamp", default=None)


# ----- lazy machinery -----------------------------------------------------------------------

def _weasyprint():
    """(weasyprint module, the static-only URL fetcher), imported once per process on first use."""
    global _weasy
    if _weasy is None:
        with _weasy_lock:
            if _weasy is None:
                import weasyprint
                from weasyprint.urls import URLFetcher, URLFetcherResponse

                class StaticOnlyFetcher(URLFetcher):
                    """Serves data: URIs and files under static/; refuses everything else (no network)."""

                    def fetch(self, url, headers=None):
                        scheme = url.split(":", 1)[0].lower()
                        if scheme == "data":
                            return super().fetch(url, headers)
                        if scheme == "file":
                            path = os.path.realpath(_file_url_path(url))
                            if os.path.commonpath([path, STATIC_DIR]) == STATIC_DIR and os.path.isfile(path):
                                with open(path, "rb") as fh:
                                    return URLFetcherResponse(url, fh.read())
                        raise ValueError(f"Refused to fetch {url[:80]!r}: documents load only data: URIs "
                                         "and files under static/.")

                _weasy = (weasyprint, StaticOnlyFetcher())
    return _weasy


def _file_url_path(url):
    from urllib.parse import unquote, urlsplit
    return unquote(urlsplit(url.split("?", 1)[0]).path)


def url_fetcher():
    """The fetcher every document render uses (exposed for tests)."""
    return _weasyprint()[1]


def _jinja():
    """The documents' own Jinja environment (models do not depend on Flask)."""
    global _env
    if _env is None:
        import jinja2
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                                 trim_blocks=True, lstrip_blocks=True)
        env.filters["qty"] = _plain_number
        env.filters["pct"] = _percent
        env.filters["date"] = _long_date
        _env = env
    return _env


def _facturx_module():
    """factur-x, imported on first use; its PDF timestamps follow the document date while rendering."""
    global _facturx
    if _facturx is None:
        import facturx
        import facturx.facturx as core
        original_pdf, original_meta = core._get_pdf_timestamp, core._get_metadata_timestamp

        def pdf_timestamp(date=None):
            fixed = _pdf_timestamp.get()
            return original_pdf(date if date is not None or fixed is None else fixed)

        def metadata_timestamp():
            fixed = _pdf_timestamp.get()
            return fixed.strftime("%Y-%m-%dT%H:%M:%S+00:00") if fixed else original_meta()

        core._get_pdf_timestamp, core._get_metadata_timestamp = pdf_timestamp, metadata_timestamp
        _facturx = facturx
    return _facturx


# ----- formatting -----------------------------------------------------------------------------

def _plain_number(value):
    """A Decimal without trailing zeros: 2.000 -> 2, 1.500 -> 1.5, grouped thousands."""
    if value is None:
        return ""
    value = Decimal(value).normalize()
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    return f"{value:,f}"


def _percent(value):
    return f"{_plain_number(value)}\u00a0%"


def _long_date(value):
    if not value:
        return ""
    if isinstance(value, datetime.datetime):
        value = value.date()
    return value.strftime("%-d %B %Y")


def _grouped(code):
    """An IBAN as printed: groups of four."""
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4)) if code else None


def _decimal_text(value, places=2):
    return f"{Decimal(value):.{places}f}"


# ----- parties ------------------------------------------------------------------------------

def seller_country(settings):
    """The seller's ISO country: the prefix of its VAT id (EL is Greece, XI Northern Ireland), or without a
    VAT id the last line of its address when that names a country (Germany, DE)."""
    vat = (settings.vat_id or "").strip().upper()
    if re.match(r"^[A-Z]{2}", vat):
        return VAT_PREFIX_COUNTRY.get(vat[:2], vat[:2])
    if vat:
        return None
    return _address_country(settings.address)


def text_lines(text):
    """The non-blank lines of a settings text (address, bank details, legal information), stripped."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _address_country(address):
    """The country the last line of a postal address names (a country name or a two-letter code), or None."""
    lines = text_lines(address)
    if not lines:
        return None
    last = lines[-1]
    code = COUNTRY_CODES.get(last.lower()) or last.upper()  # a name (Germany, UK) or a code (DE)
    return code if code in COUNTRY_CODES_ISO else None


def seller_block(settings):
    """The company block of a document: name, address lines, contact, VAT id, bank lines, logo URI."""
    logo = None
    if settings.logo and settings.logo_mime:
        logo = f"data:{settings.logo_mime};base64,{base64.b64encode(bytes(settings.logo)).decode('ascii')}"
    return {"name": settings.company_name, "address": text_lines(settings.address), "vat_id": settings.vat_id,
            "email": settings.email,
            "tax_number": settings.tax_number, "register": settings.company_register,
            "legal": text_lines(settings.legal_info),
            "phone": settings.phone, "logo": logo, "country": seller_country(settings),
            "bank": text_lines(settings.bank_details)}


def customer_party(document):
    """The billed party of a document: its account (with the contact as attention line) or its contact."""
    account = document.account if document.account_id else None
    contact = document.contact if document.contact_id else None
    party = account or contact
    if party is None:
        return None
    return {"kind": "account" if account else "contact", "name": party.name,
            "attention": contact.name if account and contact else "",
            "street": party.street, "postal_code": party.postal_code, "city": party.city,
            "country": (party.country or "").strip().upper(),
            "vat_id": (account.vat_id if account else "") or ""}


def customer_block(document, home_country):
    """Customer name, attention line and postal lines (the country only when it is abroad)."""
    party = customer_party(document)
    return None if party is None else customer_block_of(party, home_country)


def customer_block_of(party, home_country):
    city = " ".join(p for p in (party["postal_code"], party["city"]) if p)
    lines = [line for line in (party["street"], city) if line]
    if party["country"] and party["country"] != home_country:
        lines.append(COUNTRY_NAMES.get(party["country"], party["country"]).upper())
    return dict(party, lines=lines)


def in_northern_ireland(party):
    """Whether an address is in Northern Ireland: every postcode there starts with BT, and the EU's code of it
    is XI."""
    country = party.get("country")
    return country == "XI" or (country == "GB" and (party.get("postal_code") or "").strip().upper().startswith("BT"))


def tax_category(rate, seller, buyer, exemption="", supply="services"):
    """EN 16931 VAT category of a line: S above 0 %; at 0 %: E for a line exempt on a legal ground (its
    `exemption`); for a business registered for VAT in another EU country (its VAT id's prefix, the goods
    sent there) K (intra-Community supply, Art. 138) for goods and AE (reverse charge, Art. 196) for
    services — goods sent to Northern Ireland (a BT postcode, or the country typed as XI) move as within the
    EU (Windsor Framework): K to a buyer with an XI VAT id (or another member state's), else Z, never an export;
    for a buyer outside the EU G:
    goods exported (Art. 146), services to a business not taxable in the EU (Art. 44; a category O invoice
    could carry no VAT ids and no other category); Z (zero rated) otherwise, e.g. a private buyer."""
    if Decimal(rate) > 0:
        return "S"
    if exemption:
        return "E"
    buyer = buyer or {}
    home, abroad = seller.get("country"), buyer.get("country")
    if home not in EU_COUNTRIES or not abroad or abroad == home:
        return "Z"
    prefix = (buyer.get("vat_id") or "").strip().upper()[:2]
    registered = VAT_PREFIX_COUNTRY.get(prefix, prefix)
    if supply == "goods" and in_northern_ireland(buyer):
        return "K" if prefix == "XI" or registered in EU_COUNTRIES - {home} else "Z"
    abroad = VAT_PREFIX_COUNTRY.get(abroad, abroad)  # services to Northern Ireland: the United Kingdom's
    if abroad in EU_COUNTRIES:
        return ("K" if supply == "goods" else "AE") if registered in EU_COUNTRIES - {home} else "Z"
    if supply == "goods" or buyer.get("kind") == "account" or prefix:
        return "G"
    return "Z"


def tax_rows(lines, seller, buyer, categories=None, issued=None):
    """The tax breakdown of documents and e-invoices (EN 16931 BG-23): one row per rate and VAT category,
    with the category's label, the statements the document must make and its exemption reason and code
    (BT-120/121); exempt lines make one row naming their grounds. `lines`: rows of _line_rows. A credit
    note gives `categories` (the lines', as its invoice was issued) and `issued` ({category: (reason, code)}
    of the invoice's breakdown), so that it words each row as the invoice did."""
    groups = {}
    for position, line in enumerate(lines):
        category = categories[position] if categories else \
            tax_category(line["tax_rate"], seller, buyer, line["tax_exemption"], line["supply"])
        row = groups.setdefault((Decimal(line["tax_rate"]), category), {
            "rate": Decimal(line["tax_rate"]), "net": Decimal(0), "tax": Decimal(0), "category": category,
            "note": CATEGORY_NOTE[category], "texts": [], "supplies": set()})
        row["net"] += line["net"]
        row["tax"] += line_tax(line["net"], line["tax_rate"])
        if category == "E":
            text = (line["tax_exemption"], "", line["tax_exemption"])
        else:
            text = EXEMPTION_TEXT.get((category, line["supply"]))
        if text and text not in row["texts"]:
            row["texts"].append(text)
        row["supplies"].add(line["supply"])
    rows = [groups[key] for key in sorted(groups)]
    for row in rows:
        reasons, codes, statements = (list(dict.fromkeys(part)) for part in zip(*row["texts"])) \
            if row["texts"] else ([], [], [])
        if row["category"] == "E":
            statements = [f"Exempt from VAT: {'; '.join(statements)}."]
        codes = [code for code in codes if code]
        if row["category"] == "G" and row["supplies"] == {"services"}:
            row["note"] = SERVICES_OUTSIDE_EU_NOTE
        row.update(reason="; ".join(reasons), code=codes[0] if len(codes) == 1 else "", statements=statements)
        if issued and row["category"] in issued and row["category"] != "E":
            row.update(_issued_wording(row["category"], *issued[row["category"]]))
    return rows


_CODE_STATEMENT = {code: statement for (reason, code, statement) in EXEMPTION_TEXT.values() if code}


def _issued_wording(category, reason, code):
    """A row's label, statements, reason and code as an issued invoice's breakdown states its category."""
    statements = [_CODE_STATEMENT[code]] if code in _CODE_STATEMENT else []
    outside_reason, _, outside_statement = EXEMPTION_TEXT[("G", "services")]
    if category == "G" and outside_reason in reason:
        statements.append(outside_statement)
    note = SERVICES_OUTSIDE_EU_NOTE if category == "G" and code != "VATEX-EU-G" else CATEGORY_NOTE[category]
    return {"note": note, "statements": statements, "reason": reason, "code": code}


# ----- the rule an invoice must meet before it can be issued -------------------------------------

_NO_VAT_ID_OR_TAX_NUMBER = "Enter your company's VAT id (e.g. DE123456789) or its tax number in the settings."
_VAT_ID_PREFIX = "Start your company's VAT id with its country code (e.g. DE123456789)."
_ADDRESS_COUNTRY = ("End your company's address in the settings with its country (e.g. Germany): without a VAT "
                    "id, the e-invoice takes the country from there.")
_VAT_ID_ABROAD = ("Enter your company's VAT id in the settings (e.g. DE123456789): a sale without VAT abroad is "
                  "quoted and invoiced with it.")
# what the one-sentence refusal calls these (a field's words otherwise: _FIELD_WORDS)
_MESSAGE_WORDS = {_NO_VAT_ID_OR_TAX_NUMBER: "VAT id or tax number", _VAT_ID_PREFIX: "VAT id's country code",
                  _ADDRESS_COUNTRY: "country at the end of the postal address", _VAT_ID_ABROAD: "VAT id"}


def issue_missing(invoice, settings):
    """What the e-invoice (EN 16931) needs from the settings and the customer (field -> message)."""
    missing = {}
    if not (settings.company_name or "").strip():
        missing["settings.company_name"] = "Enter your company name in the settings."
    if not (settings.address or "").strip():
        missing["settings.address"] = "Enter your company's postal address in the settings."
    vat_id, tax_number = (settings.vat_id or "").strip(), (settings.tax_number or "").strip()
    if not vat_id and not tax_number:
        missing["settings.vat_id"] = _NO_VAT_ID_OR_TAX_NUMBER
    elif vat_id and seller_country(settings) is None:
        missing["settings.vat_id"] = _VAT_ID_PREFIX
    elif not vat_id and seller_country(settings) is None and (settings.address or "").strip():
        missing["settings.address"] = _ADDRESS_COUNTRY
    if "settings.vat_id" not in missing:
        missing.update(vat_id_for_sales_abroad(invoice, settings))
    currency = currency_problem(settings.currency)  # (the app refuses such a CURRENCY at start)
    if currency:
        missing["settings.currency"] = currency
    party = customer_party(invoice)
    if party is None:
        return missing
    kind, label = party["kind"], party["name"] or f"the {party['kind']}"
    if not (party["name"] or "").strip():
        missing[f"{kind}.name"] = f"Enter the name of the {kind}."
    if not (party["street"] or "").strip():
        missing[f"{kind}.street"] = f"Enter the street address of {label}."
    if not (party["city"] or "").strip():
        missing[f"{kind}.city"] = f"Enter the city of {label}."
    if party["country"] not in COUNTRY_CODES_ISO:
        missing[f"{kind}.country"] = f"Enter the two-letter country code of {label} (e.g. DE; GB for the UK)."
    if party["vat_id"] and not re.match(r"^[A-Za-z]{2}", party["vat_id"].strip()):
        missing[f"{kind}.vat_id"] = f"Start the VAT id of {label} with its country code (e.g. FR40123456789)."
    if party["country"] == "GB" and not (party["postal_code"] or "").strip() and any(
            line.supply == "goods" and not line.tax_rate for line in invoice.line_rows()):
        missing[f"{kind}.postal_code"] = (f"Enter the postcode of {label}: it tells goods to Northern Ireland (BT), "
                                          "which move as within the EU, from goods exported to the rest of the UK.")
    if not invoice.order.fulfilled_at and "K" in categories_of(invoice, settings):
        missing["delivery"] = ("Goods to a business in another EU country are invoiced once delivered: fulfil the "
                               "order first (the invoice of an intra-Community supply states its delivery date).")
    drift = vat_rounding_drift(invoice.line_rows(), settings.currency)
    if drift:
        missing["lines"] = drift
    return missing


# EN 16931 (BR-S-09) takes a rate's VAT as its taxable amount times the rate, within one currency unit; the
# documents round the VAT of each line (DESIGN: tax per line), whose sum drifts from it by up to half a cent a line.
VAT_DRIFT_LIMIT = Decimal("1.00")


def vat_rounding_drift(lines, currency):
    """Why the lines' VAT, rounded line by line, cannot be stated in an e-invoice (None when it can): a rate
    whose many lines all round the same way drifts a currency unit or more from that rate times their total."""
    groups = {}
    for line in lines:
        rate = Decimal(line.tax_rate)
        if rate:
            net, tax = groups.get(rate, (Decimal(0), Decimal(0)))
            groups[rate] = (net + line.net, tax + line_tax(line.net, rate))
    for rate, (net, tax) in sorted(groups.items()):
        exact = round_money(net * rate / 100)
        if abs(tax - exact) >= VAT_DRIFT_LIMIT:  # (BR-S-09 wants less than one unit; BR-CO-17 takes one)
            money = lambda amount: format_money(amount, currency)  # noqa: E731
            return (f"The {_plain_number(rate)} % lines' VAT, rounded line by line, comes to {money(tax)}: "
                    f"{money(abs(tax - exact))} {'more' if tax > exact else 'less'} than {_plain_number(rate)} % "
                    f"of their {money(net)} ({money(exact)}), and an e-invoice allows less than "
                    f"{money(VAT_DRIFT_LIMIT)}. Put identical items on one line with their quantity (or "
                    "split the invoice) so that the rounding evens out.")
    return None


def vat_id_for_sales_abroad(document, settings):
    """{"settings.vat_id": why} when a company without a VAT id sells without VAT abroad (K, AE, G): a quote or
    an invoice that says so names the seller's VAT id (Art. 226 VAT Directive); else {}."""
    if (settings.vat_id or "").strip() or not categories_of(document, settings) & {"K", "AE", "G"}:
        return {}
    return {"settings.vat_id": _VAT_ID_ABROAD}


def categories_of(invoice, settings):
    """The VAT categories of the invoice's lines."""
    seller, buyer = seller_block(settings), customer_party(invoice)
    return {tax_category(line.tax_rate, seller, buyer, line.tax_exemption, line.supply) for line in invoice.line_rows()}


_FIELD_WORDS = {"company_name": "name", "address": "postal address", "vat_id": "VAT id",
                "name": "name", "street": "street address", "city": "city", "country": "country code",
                "postal_code": "postcode",
                "currency": "currency code"}


_OTHER_WORDS = {"lines": "the lines' VAT, rounded line by line, is too far from what an e-invoice states"}


def missing_summary(missing):
    """One sentence for a refused issue: what the settings and the customer lack, then any other rule."""
    groups, other = {}, []
    for field, message in missing.items():
        record, _, name = field.partition(".")
        if name:
            groups.setdefault(record, []).append(
                _MESSAGE_WORDS.get(message) or _FIELD_WORDS.get(name, name.replace("_", " ")))
        else:
            other.append(_OTHER_WORDS.get(field) or message.rstrip("."))
    owners = {"settings": "the company settings need", "account": "the customer's account needs",
              "contact": "the customer's contact needs"}
    parts = [f"{owners.get(record, record + ' needs')} the {_join(words)}" for record, words in groups.items()]
    return "; ".join(other + parts)


def _join(words):
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# ----- contexts -----------------------------------------------------------------------------------

def _line_rows(document):
    rows = []
    for position, line in enumerate(document.line_rows(), start=1):
        rows.append({"position": position, "description": line.description,
                     "sku": line.product.sku if line.product_id else "",
                     "quantity": line.quantity, "unit": line.unit, "unit_price": line.unit_price,
                     "discount_pct": line.discount_pct, "tax_rate": line.tax_rate, "net": line.net,
                     "tax_exemption": line.tax_exemption, "supply": line.supply, "ground": "",
                     "rate_label": "exempt" if line.tax_exemption else _percent(line.tax_rate)})
    if len({row["tax_exemption"] for row in rows if row["tax_exemption"]}) > 1:
        for row in rows:  # several grounds: each exempt line names its own under its description
            row["ground"] = row["tax_exemption"] and f"VAT exempt: {row['tax_exemption']}"
    return rows


# Advance widths of Liberation Sans (metric-compatible with Arial), in 1/1000 em: enough to size the number
# columns for what they hold, so 12,500 or € 9,999,999.99 never runs into the next column.
_ADVANCE = {**dict.fromkeys("0123456789€$£¥#_?", 556), **dict.fromkeys(",.:;' \u00a0!|", 278), "%": 889,
            "\u2212": 584, "-": 333, **dict.fromkeys("mwMW", 944), **dict.fromkeys("ijlftrI", 333)}
_MM_PER_PT = Decimal("0.3528")
# (class, CSS width in mm the column gets at least, whether the text may wrap at spaces)
_LINE_COLUMNS = (("qty", 10, False), ("unit", 12, True), ("price", 21, False), ("disc", 10, False),
                 ("rate", 10, False), ("amount", 23, False))


def _advance(ch):
    if ch in _ADVANCE:
        return _ADVANCE[ch]
    if unicodedata.east_asian_width(ch) in "WF":  # Chinese, Japanese, Korean: a full em
        return 1000
    return 722 if ch.isupper() else 611


def _text_mm(text, size_pt):
    """The printed width of `text` at `size_pt` (an upper estimate: unknown letters count as wide ones)."""
    units = sum(_advance(ch) for ch in text)
    return Decimal(units) / 1000 * Decimal(size_pt) * _MM_PER_PT


_LINE_MM, _POSITION_MM, _DESCRIPTION_MM, _UNIT_MOST_MM = 170, 6, 55, 20
_TABLE_SIZES = (Decimal("9.5"), Decimal("8.5"), Decimal("7.5"))  # pt: the stylesheet's, then smaller


def _column_widths(cells, totals, shown):
    """Widths in mm of the line table's number and unit columns and of the totals' amount column: the
    stylesheet's, or wider when a cell needs it (1 mm padding each side, 5 % spare), and the table's font
    size: smaller when the `shown` columns would otherwise leave the description less than 55 mm. `cells`
    maps a column class to its texts; a unit may wrap at spaces, so its longest word counts, and a unit
    word longer than 20 mm breaks inside its column."""
    for size in _TABLE_SIZES:
        widths = {"size": size}
        for name, least, wraps in _LINE_COLUMNS:
            texts = cells.get(name, ())
            words = [word for text in texts for word in text.split()] if wraps else texts
            needed = max((_text_mm(text, size) for text in words), default=Decimal(0)) * Decimal("1.05") + 2
            widths[name] = max(Decimal(least), needed.quantize(Decimal("0.1")))
        widths["unit"] = min(widths["unit"], Decimal(_UNIT_MOST_MM))
        if sum(widths[name] for name in shown) + _POSITION_MM + _DESCRIPTION_MM <= _LINE_MM:
            break
    needed = max(_text_mm(text, "11") for text in totals) * Decimal("1.05") + 1
    widths["total"] = max(Decimal(28), needed.quantize(Decimal("0.1")))
    return widths


def _lines_in(text, size_pt, width_mm):
    """How many lines `text` takes wrapped in a box `width_mm` wide (an estimate erring long)."""
    return max(1, math.ceil(_text_mm(text, size_pt) * Decimal("1.1") / width_mm))


def page_fit(seller):
    """How this company's texts fit the letterhead and the footer of the stylesheet: the company block
    drops its phone / email / VAT lines (they are in the footer too) when they would run into the address
    window, a long name is printed smaller beside the logo, and the bottom margin grows with the footer
    (long bank lines), which is never cut at the page's edge. A name and address too long even then are set
    smaller."""
    name_lines = _lines_in(seller["name"], "8.5", 66)
    contact_lines = bool(seller["phone"] or seller["email"]) + bool(seller["vat_id"] or seller["tax_number"])
    footer_lines = max(
        _lines_in(seller["name"], "7", 45) + _lines_in(", ".join(seller["address"]), "7", 45)
        + sum(_lines_in(text, "7", 45) for text in [seller["register"], *seller["legal"]] if text),
        sum(_lines_in(text, "7", 45) for text in (seller["phone"], seller["email"], seller["vat_id"] and
                                                  f"VAT ID {seller['vat_id']}", seller["tax_number"] and
                                                  f"Tax no. {seller['tax_number']}") if text),
        sum(_lines_in(line, "7", 45) for line in seller["bank"]))
    footer_mm = Decimal("8.7") + footer_lines * Decimal("3.58") + 2  # padding, rule, lines of 7 pt × 1.45
    block_lines = name_lines + len(seller["address"])
    return {"company_contact": block_lines + contact_lines <= 7, "company_compact": block_lines > 7,
            "long_name": _lines_in(seller["name"], "17", 95) > 3,
            "bottom_mm": max(26, math.ceil(footer_mm))}


def _common_context(document, settings, draft):
    seller = seller_block(settings)
    customer = customer_block(document, seller["country"])
    totals = document.totals()
    lines = _line_rows(document)
    owner = document.opportunity.owner if document.opportunity.owner_id else None
    context = {"document": document, "settings": settings, "seller": seller, "customer": customer,
               "lines": lines, "totals": totals, "tax_rows": tax_rows(lines, seller, customer),
               "has_discount": any(row["discount_pct"] for row in lines),
               "show_rate": len({row["rate_label"] for row in lines}) > 1,
               "watermark": "DRAFT" if draft else None,
               "owner": owner, "topic": document.opportunity.topic, "fit": page_fit(seller)}
    return _with_currency(context, settings.currency)


def _with_currency(context, currency):
    """The context's amounts printed in `currency`, and the columns sized for them."""
    money = lambda amount: format_money(amount, currency)  # noqa: E731
    lines, totals = context["lines"], context["totals"]
    cells = {"qty": [_plain_number(row["quantity"]) for row in lines], "unit": [row["unit"] for row in lines],
             "price": [money(row["unit_price"]) for row in lines], "amount": [money(row["net"]) for row in lines],
             "disc": [_percent(row["discount_pct"]) for row in lines],
             "rate": [row["rate_label"] for row in lines]}
    amounts = [money(totals.net), money(totals.gross)] + [money(row["tax"]) for row in context["tax_rows"]]
    shown = ["qty", "unit", "price", "amount"] + ["disc"] * context["has_discount"] + ["rate"] * context["show_rate"]
    context.update(money=money, currency=currency, widths=_column_widths(cells, amounts, shown))
    return context


def quote_context(quote, settings, draft):
    """Everything templates/documents/quote.html shows."""
    context = _common_context(quote, settings, draft)
    dated = quote.activated_at.date() if quote.activated_at and not draft else today()
    context.update(kind="quote", title="Quote", number=quote.display_number, date=dated,
                   meta=[("Quote no.", f"Q-{quote.number:05d}"), ("Revision", str(quote.revision)),
                         ("Date", _long_date(dated)), ("Valid until", _long_date(quote.valid_until))])
    return context


def invoice_context(invoice, settings, draft):
    """Everything templates/documents/invoice.html shows."""
    context = _common_context(invoice, settings, draft)
    issued = invoice.issue_date or today()
    due = invoice.due_date or issued + datetime.timedelta(days=invoice.payment_terms_days)
    order = invoice.order
    delivered = order.fulfilled_at.date() if order.fulfilled_at else None
    meta = [("Invoice no.", invoice.number or "not yet issued"), ("Invoice date", _long_date(issued)),
            ("Due date", _long_date(due))]
    period = (invoice.period_start, invoice.period_end) if invoice.period_start and invoice.period_end else None
    if period:  # the time of supply of a subscription or a project: its period
        meta += [("Service from", _long_date(period[0])), ("Service to", _long_date(period[1]))]
    if delivered or not period:
        meta.append(("Delivery date", _long_date(delivered) if delivered else "to follow"))
    meta.append(("Order", order.display_number))
    context.update(kind="invoice", title="Invoice" if invoice.number else "Draft invoice", number=invoice.number or "",
                   date=issued, due_date=due, delivered=delivered, period=period, meta=meta,
                   iban=_grouped(_bank_iban(settings)),
                   payment_reference=invoice.number)
    code = invoice.number and epc_payment_code(settings, context["totals"].gross, invoice.number, context["currency"])
    # an issued invoice's (a draft is not paid yet), encoded with no write lock held (10 ms)
    context["payment_qr"] = done_outside_lock(("payment-qr", code), lambda: _qr_png_uri(code)) if code else None
    return context


def epc_payment_code(settings, amount, reference, currency):
    """The text of an EPC QR code (EPC069-12 version 002, "GiroCode"): a SEPA credit transfer of `amount` euros
    to the company's IBAN (and BIC when the bank details name one) with the invoice number as remittance, which
    a banking app reads when the customer scans the invoice. None when it cannot be made: another currency than
    the euro, no valid IBAN, or an amount the standard does not take (0.01 to 999,999,999.99)."""
    iban, bic = _bank_account(settings)
    amount = Decimal(amount)
    if currency != "EUR" or not iban or not Decimal("0.01") <= amount <= Decimal("999999999.99"):
        return None
    if iban[:2] not in EEA_COUNTRIES and (iban[:2] not in SEPA_OUTSIDE_EEA or not bic):
        return None  # not a SEPA account, or one outside the EEA without the BIC its transfers need
    name = " ".join((settings.company_name or "").split())[:70].rstrip()
    while True:
        code = "\n".join(("BCD", "002", "1", "SCT", bic or "", name, iban, f"EUR{amount:.2f}", "", "",
                          (reference or "")[:140]))
        if len(code.encode("utf-8")) <= 331 or not name:  # the standard's limit (a name of many-byte letters)
            return code if len(code.encode("utf-8")) <= 331 else None
        name = name[:-1].rstrip()


def _qr_png_uri(text):
    """`text` as a QR code (error correction M, as the EPC asks), a PNG data URI for the document: 4 pixels a
    module, printed unsmoothed (an SVG of it cost WeasyPrint three times as much to draw)."""
    import segno
    return segno.make_qr(text, error="m", boost_error=False, encoding="utf-8").png_data_uri(border=2, scale=4)


def credit_note_context(credit, settings, issued_xml):
    """Everything templates/documents/credit_note.html shows: the voided invoice's lines and totals, and its
    buyer, VAT categories and currency as the issued invoice's e-invoice (`issued_xml`, parsed) states them
    (a customer's address or the settings may have changed since). The letterhead is the company's today:
    the document is new."""
    invoice = credit.invoice
    context = _common_context(invoice, settings, draft=False)
    seller_country, buyer, currency = _issued_terms(issued_xml)
    customer = customer_block_of(dict(buyer, attention=(context["customer"] or {}).get("attention", "")),
                                 seller_country)
    categories, issued = _issued_tax(issued_xml)
    issued_rows = tax_rows(context["lines"], {"country": seller_country}, buyer,
                           categories if len(categories) == len(context["lines"]) else None, issued)
    context.update(customer=customer, tax_rows=issued_rows)
    _with_currency(context, currency)
    context.update(document=credit, invoice=invoice, kind="credit-note", title="Credit note", number=credit.number,
                   date=credit.issue_date,
                   meta=[("Credit note no.", credit.number), ("Date", _long_date(credit.issue_date)),
                         ("For invoice", invoice.number), ("Invoice date", _long_date(invoice.issue_date))])
    return context


# ----- rendering ----------------------------------------------------------------------------------

def warm_up():
    """Pay the one-time costs (imports, fonts, stylesheet, templates) before a write lock is taken."""
    if getattr(_thread_tools, "warm", False):
        return
    weasyprint, fetcher = _weasyprint()
    fonts, stylesheet = _render_tools()
    for name in ("documents/quote.html", "documents/invoice.html"):
        _jinja().get_template(name)
    weasyprint.HTML(string="<p>Warm <b>up</b> 0123456789 €</p>", url_fetcher=fetcher).write_pdf(
        stylesheets=[stylesheet], font_config=fonts)
    _facturx_module()
    importlib.import_module("segno")  # the payment QR code's encoder
    _thread_tools.warm = True


def render_html(template, context):
    """The document's HTML (also handy for looking at a template in a browser)."""
    return _jinja().get_template(template).render(**context)


def _render_tools():
    """This thread's font configuration and parsed stylesheet, made once and reused by every render."""
    tools = getattr(_thread_tools, "tools", None)
    if tools is None:
        weasyprint, fetcher = _weasyprint()
        from weasyprint.text.fonts import FontConfiguration
        fonts = FontConfiguration()
        source = _jinja().loader.get_source(_jinja(), "documents/_style.css")[0]
        stylesheet = weasyprint.CSS(string=source, base_url=STATIC_DIR + os.sep, url_fetcher=fetcher,
                                    font_config=fonts)
        tools = _thread_tools.tools = (fonts, stylesheet)
    return tools


def _write_pdf(html, variant=None):
    weasyprint, fetcher = _weasyprint()
    fonts, stylesheet = _render_tools()
    document = weasyprint.HTML(string=html, base_url=STATIC_DIR + os.sep, url_fetcher=fetcher)
    options = {"pdf_variant": variant} if variant else {}
    return document.write_pdf(stylesheets=[stylesheet], font_config=fonts, **options)


class DocumentSource:
    """What a document's PDF is made from: its HTML and, for an issued invoice, the PDF/A variant,
    the Factur-X XML, the PDF metadata and timestamp. Rendering is a function of the source alone,
    so a PDF rendered before a write lock stands for one rendered under it when the sources are equal."""

    __slots__ = ("html", "variant", "xml", "metadata", "stamp")

    def __init__(self, html, variant=None, xml=None, metadata=None, stamp=None):
        self.html, self.variant, self.xml, self.metadata, self.stamp = html, variant, xml, metadata, stamp

    @property
    def key(self):
        digest = hashlib.sha256()
        for part in (self.html, self.variant or "", self.xml or b"", repr(sorted((self.metadata or {}).items())),
                     self.stamp.isoformat() if self.stamp else ""):
            data = part.encode("utf-8") if isinstance(part, str) else bytes(part)
            digest.update(len(data).to_bytes(8, "big") + data)
        return digest.hexdigest()


def quote_source(quote, draft=None, settings=None):
    """The quote's source (draft=None: a DRAFT mark unless it is frozen-worthy)."""
    from .settings import Settings
    settings = settings or Settings.load()
    if draft is None:
        draft = quote.status == "draft"
    return DocumentSource(render_html("documents/quote.html", quote_context(quote, settings, draft)))


def invoice_source(invoice, draft=None, settings=None):
    """The invoice's source: an issued one becomes PDF/A-3b carrying its Factur-X XML; a draft is marked DRAFT."""
    from .settings import Settings
    settings = settings or Settings.load()
    if draft is None:
        draft = not invoice.number
    html = render_html("documents/invoice.html", invoice_context(invoice, settings, draft))
    if draft:
        return DocumentSource(html)
    issued = invoice.issue_date or today()
    return _e_invoice_source(html, facturx_xml(invoice, settings, check_xsd=False), settings, "Invoice",
                             invoice.number, issued)


def credit_note_source(credit, settings=None):
    """A credit note's source: always issued, so PDF/A-3b with its Factur-X XML (type 381) made from the
    voided invoice's own (read once, for the PDF's buyer and currency and for the XML)."""
    from .settings import Settings
    settings = settings or Settings.load()
    issued_xml = _issued_xml(credit.invoice)
    html = render_html("documents/credit_note.html", credit_note_context(credit, settings, issued_xml))
    return _e_invoice_source(html, credit_note_xml(credit, issued_xml, check_xsd=False), settings, "Credit note",
                             credit.number, credit.issue_date, f" for invoice {credit.invoice.number}")


def _e_invoice_source(html, xml, settings, title, number, dated, about=""):
    """The source of an issued e-invoice document: PDF/A-3b carrying `xml`, with its PDF metadata and
    timestamp (the document's date)."""
    metadata = {"author": settings.company_name, "keywords": f"Factur-X, {title}",
                "title": f"{settings.company_name}: {title} {number}",
                "subject": f"{title} {number} dated {dated.isoformat()}{about} issued by {settings.company_name}"}
    return DocumentSource(html, "pdf/a-3b", xml, metadata,
                          datetime.datetime(dated.year, dated.month, dated.day, tzinfo=datetime.timezone.utc))


def document_source(document, draft=None):
    if document.record_type == "quote":
        return quote_source(document, draft)
    if document.record_type == "credit_note":
        return credit_note_source(document)
    return invoice_source(document, draft)


def pdf_from_source(source):
    """The PDF bytes of a source, rendered now (the slow part: 0.1–0.5 s)."""
    pdf = _write_pdf(source.html, variant=source.variant)
    if source.xml is None:
        return pdf
    facturx = _facturx_module()
    token = _pdf_timestamp.set(source.stamp)
    try:
        return facturx.generate_from_binary(pdf, source.xml, flavor="factur-x", level="en16931", check_xsd=True,
                                            check_schematron=False, pdf_metadata=source.metadata, lang="en-GB")
    finally:
        _pdf_timestamp.reset(token)


def render_quote_pdf(quote, draft=None, settings=None):
    """The quote as PDF bytes, rendered now."""
    return pdf_from_source(quote_source(quote, draft, settings))


def render_invoice_pdf(invoice, draft=None, settings=None):
    """The invoice as PDF bytes, rendered now."""
    return pdf_from_source(invoice_source(invoice, draft, settings))


def render_pdf(document, draft=None):
    """A quote's or an invoice's PDF rendered now."""
    return pdf_from_source(document_source(document, draft))


def freeze(document):
    """Render the issued document once and keep its bytes and SHA-256 on it (saved by the caller's
    transaction). Returns the hex digest. Under `slow_work_outside_lock` the render happens before the
    write lock is taken (see models.base.done_outside_lock); only the source is made under it."""
    source = document_source(document, draft=False)
    pdf = done_outside_lock(source.key, lambda: pdf_from_source(source))
    document.pdf = pdf
    document.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    return document.pdf_sha256


def freeze_after_the_fact(document):
    """Store the PDF of a sent quote or an issued invoice made before documents were frozen (rendered from the
    records and settings as they are now, and said so in its history); inside the caller's transaction."""
    from .history import HistoryEvent
    digest = freeze(document)
    document.save()
    HistoryEvent.write(None, document, "freeze", {"pdf_sha256": (None, digest)},
                       note="PDF stored after the fact (current company settings)")
    return digest


def is_frozen(document):
    return document.pdf is not None and bool(document.pdf_sha256)


def document_pdf(document):
    """The bytes to serve: exactly the stored ones when frozen, else a live render marked DRAFT."""
    if is_frozen(document):
        return bytes(document.pdf)
    return _draft_pdf(document_source(document, draft=True))


def _draft_pdf(source):
    """A draft's PDF, rendered again only when its source changed since it was last rendered in this
    process (a seller looks at the PDF, then downloads it to send: one render). The key is the hash of
    the whole source, so a cached PDF is exactly the one a render would make now."""
    key = source.key
    with _draft_pdfs_lock:
        pdf = _draft_pdfs.get(key)
        if pdf is not None:
            _draft_pdfs.move_to_end(key)
            return pdf
    pdf = pdf_from_source(source)
    with _draft_pdfs_lock:
        _draft_pdfs[key] = pdf
        while len(_draft_pdfs) > DRAFT_PDFS_KEPT:
            _draft_pdfs.popitem(last=False)
    return pdf


# ----- Factur-X -------------------------------------------------------------------------------------

_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_BIC = re.compile(r"\b(?:BIC|SWIFT)\W*([A-Z]{4} ?[A-Z]{2} ?[A-Z0-9]{2}(?: ?[A-Z0-9]{3})?)\b")  # COBA DE FF XXX
# SEPA: the EEA (the EU, Iceland, Liechtenstein, Norway) and, needing the BIC for transfers, these countries
EEA_COUNTRIES = EU_COUNTRIES | {"IS", "LI", "NO"}
SEPA_OUTSIDE_EEA = frozenset("AD CH GB GG GI IM JE MC SM VA".split())


def _bank_iban(settings):
    """The first valid IBAN in the bank details (spaces removed), or None."""
    return _bank_account(settings)[0]


def _bic_in(text):
    """The BIC written after "BIC" or "SWIFT" in `text` (spaces inside it removed), or None."""
    found = _BIC.search(text.upper())
    return found.group(1).replace(" ", "") if found else None


def _bank_account(settings):
    """(the first valid IBAN in the bank details, the BIC written on its line or on the next line when that
    holds no other IBAN, if any); (None, None) without an IBAN. A BIC is taken only when its country letters
    are the IBAN's."""
    from stdnum import iban
    lines = (settings.bank_details or "").upper().splitlines()
    compact = [re.sub(r"[\s-]", "", line) for line in lines]  # IBANs are written in groups
    for number, line in enumerate(lines):
        for match in _IBAN.finditer(compact[number]):
            candidate = match.group(0)
            for end in range(len(candidate), 14, -1):
                if iban.is_valid(candidate[:end]):
                    account = candidate[:end]
                    # its own line, and the next one unless that is another account's
                    nearby = [line] + [lines[i] for i in range(number + 1, min(number + 2, len(lines)))
                                       if not _IBAN.search(compact[i])]
                    for near in nearby:
                        bic = _bic_in(near)
                        if bic and bic[4:6] == account[:2]:
                            return account, bic
                    return account, None
    return None, None


def _party_dict(name, country, street="", postal_code="", city="", vat_id="", extra_lines=()):
    party = {"name": name, "country_code": country}
    if street:
        party["addr_l1"] = street
    for key, line in zip(("addr_l2", "addr_l3"), extra_lines):
        party[key] = line
    if postal_code:
        party["postcode"] = postal_code
    if city:
        party["city"] = city
    if vat_id:
        party["vat_identifier"] = re.sub(r"\s", "", vat_id).upper()
    return party


def _seller_party(settings, country):
    """The seller from the free-text settings address: street first, 'postal code city' when it parses."""
    lines = text_lines(settings.address)
    if _address_country(settings.address):  # the country is the CountryID, not an address line
        lines = lines[:-1]
    street, postal, city, extra = "", "", "", []
    for line in lines:
        match = re.fullmatch(r"((?:[A-Z]{1,2}-?)?\d[\dA-Z -]{2,9}?)\s+(\D.*)", line)
        if match and not city:
            postal, city = match.group(1).strip(), match.group(2).strip()
        elif not street:
            street = line
        else:
            extra.append(line)
    if not city and extra:
        city = extra.pop()
    party = _party_dict(settings.company_name, country, street, postal, city, settings.vat_id, extra[:2])
    tax_number, register = (settings.tax_number or "").strip(), (settings.company_register or "").strip()
    if tax_number:
        party["tax_identifier"] = tax_number  # BT-32
    if register:
        party["legal_identifier"] = register  # BT-30
    legal = "; ".join(text_lines(settings.legal_info))
    if legal:
        party["legal_info"] = legal  # BT-33
    if tax_number and not settings.vat_id and not register:
        party["identifiers"] = {None: tax_number}  # BR-CO-26: the seller identified (BT-29) by its tax number
    return party


def facturx_xml(invoice, settings, check_xsd=True):
    """The invoice's EN 16931 CII XML (Factur-X profile EN16931), checked against the XSD unless the caller
    does it (generate_from_binary checks it when it embeds the XML)."""
    return _facturx_module().generate_xml(_facturx_data(invoice, settings), flavor="factur-x", level="en16931",
                                          check_xsd=check_xsd, check_schematron=False)


CII = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
       "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
       "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
       "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"}


def embedded_xml(document):
    """The Factur-X XML embedded in an issued invoice's or a credit note's frozen PDF: the e-invoice exactly
    as it was sent (bytes), or None when the document is not frozen (a draft)."""
    if not is_frozen(document):
        return None
    from facturx import get_xml_from_pdf
    _, xml = get_xml_from_pdf(bytes(document.pdf), check_xsd=False)
    return xml or None


def _issued_xml(invoice):
    """The Factur-X XML embedded in the issued invoice's frozen PDF, parsed."""
    from lxml import etree
    return etree.fromstring(embedded_xml(invoice))


def _issued_terms(root):
    """(seller country, buyer party, currency) as an issued invoice's XML states them."""
    def text(node, path):
        return (node.findtext(path, namespaces=CII) or "").strip() if node is not None else ""
    seller = root.find(".//ram:SellerTradeParty", CII)
    buyer = root.find(".//ram:BuyerTradeParty", CII)
    address = buyer.find("ram:PostalTradeAddress", CII) if buyer is not None else None
    party = {"kind": "account", "name": text(buyer, "ram:Name"), "street": text(address, "ram:LineOne"),
             "postal_code": text(address, "ram:PostcodeCode"), "city": text(address, "ram:CityName"),
             "country": text(address, "ram:CountryID"),
             "vat_id": text(buyer, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']")}
    currency = text(root, ".//ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode")
    return text(seller, "ram:PostalTradeAddress/ram:CountryID"), party, currency


def _issued_tax(root):
    """(the lines' VAT categories, {category: (exemption reason, reason code)} of the breakdown) as an issued
    invoice's XML states them."""
    categories = [node.text for node in root.xpath(
        "//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", namespaces=CII)]
    breakdown = {node.findtext("ram:CategoryCode", namespaces=CII): (
        node.findtext("ram:ExemptionReason", default="", namespaces=CII),
        node.findtext("ram:ExemptionReasonCode", default="", namespaces=CII))
        for node in root.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=CII)}
    return categories, breakdown


def credit_note_xml(credit, issued_xml, check_xsd=True):
    """The credit note's EN 16931 CII XML: the issued invoice's own XML (`issued_xml`, parsed; same parties,
    VAT categories, currency, lines and totals) as type 381 with its number and date, the invoice as
    preceding invoice reference (BG-3), the reason as note, and no due date or payment means (nothing is to
    be paid)."""
    from copy import deepcopy
    from lxml import etree
    invoice, root = credit.invoice, deepcopy(issued_xml)

    def element(parent, tag, text=None, **attributes):
        prefix, name = tag.split(":")
        node = etree.SubElement(parent, f"{{{CII[prefix]}}}{name}", **attributes)
        node.text = text
        return node
    header = root.find("rsm:ExchangedDocument", CII)
    header.find("ram:ID", CII).text = credit.number
    header.find("ram:TypeCode", CII).text = "381"
    header.find("ram:IssueDateTime/udt:DateTimeString", CII).text = credit.issue_date.strftime("%Y%m%d")
    for note in header.findall("ram:IncludedNote", CII):
        header.remove(note)
    if credit.reason:
        note = etree.Element(f"{{{CII['ram']}}}IncludedNote")
        element(note, "ram:Content", credit.reason[:1000])
        header.find("ram:IssueDateTime", CII).addnext(note)
    settlement = root.find(".//ram:ApplicableHeaderTradeSettlement", CII)
    for path in ("ram:PaymentReference", "ram:SpecifiedTradeSettlementPaymentMeans", "ram:SpecifiedTradePaymentTerms"):
        for node in settlement.findall(path, CII):
            settlement.remove(node)
    terms = etree.Element(f"{{{CII['ram']}}}SpecifiedTradePaymentTerms")
    element(terms, "ram:Description", f"Credit note for invoice {invoice.number}: the invoice is void and not "
                                      "to be paid.")
    summation = settlement.find("ram:SpecifiedTradeSettlementHeaderMonetarySummation", CII)
    summation.addprevious(terms)
    reference = etree.Element(f"{{{CII['ram']}}}InvoiceReferencedDocument")
    element(reference, "ram:IssuerAssignedID", invoice.number)
    dated = element(reference, "ram:FormattedIssueDateTime")
    element(dated, "qdt:DateTimeString", invoice.issue_date.strftime("%Y%m%d"), format="102")
    summation.addnext(reference)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    if check_xsd:
        _facturx_module().xml_check_xsd(xml, flavor="factur-x", level="en16931")
    return xml


def _facturx_data(invoice, settings):
    """The invoice's Factur-X fields (factur-x's generate_xml dictionary, keyed by EN 16931 business terms)."""
    seller = seller_block(settings)
    buyer = customer_party(invoice)
    totals = invoice.totals()
    currency = settings.currency
    lines = []
    for position, line in enumerate(invoice.line_rows(), start=1):
        category = tax_category(line.tax_rate, seller, buyer, line.tax_exemption, line.supply)
        gross_price = Decimal(line.unit_price)
        net_price = (gross_price * (100 - Decimal(line.discount_pct)) / 100).quantize(Decimal("0.0001"))
        row = {"BT-126": str(position), "BT-153": line.description[:500],
               "BT-129": _decimal_text(line.quantity, 3), "BT-130": UNIT_CODES.get(
                   (line.unit or "").strip().lower(), "C62"),
               "BT-131": _decimal_text(line.net), "BT-146": _decimal_text(net_price, 4),
               "BT-151": category, "BT-152": _decimal_text(line.tax_rate)}
        if line.discount_pct:
            row["BT-148"] = _decimal_text(gross_price, 4)
            row["BT-147-00"] = [{"BT-147": _decimal_text(gross_price - net_price, 4)}]
        if line.product_id:
            row["BT-155"] = line.product.sku
        lines.append(row)
    breakdown = []
    for row in tax_rows(_line_rows(invoice), seller, buyer):
        entry = {"BT-116": _decimal_text(row["net"]), "BT-117": _decimal_text(row["tax"]), "BT-118": row["category"],
                 "BT-119": _decimal_text(row["rate"])}
        if row["reason"]:
            entry["BT-120"] = row["reason"]
        if row["code"]:
            entry["BT-121"] = row["code"]
        breakdown.append(entry)
    issued = invoice.issue_date
    data = {
        "BT-1": invoice.number, "BT-2": issued, "BT-3": "380", "BT-5": currency,
        "BT-9": invoice.due_date, "BT-14": invoice.order.display_number,
        "BT-20": (invoice.payment_terms or f"Payable within {invoice.payment_terms_days} days.")[:1000],
        "BG-4": _seller_party(settings, seller["country"]),
        "BG-7": _party_dict(buyer["name"], buyer["country"], buyer["street"], buyer["postal_code"],
                            buyer["city"], buyer["vat_id"]),
        "BG-23": breakdown, "BG-25": lines,
        "BT-106": _decimal_text(totals.net), "BT-109": _decimal_text(totals.net),
        "BT-110": _decimal_text(totals.tax), "BT-112": _decimal_text(totals.gross),
        "BT-115": _decimal_text(totals.gross),
    }
    if invoice.notes:
        data["BG-1"] = [{"BT-22": invoice.notes}]
    fulfilled = invoice.order.fulfilled_at
    if fulfilled:
        data["BT-72"] = fulfilled.date()
    if invoice.period_start and invoice.period_end:
        data["BT-73"], data["BT-74"] = invoice.period_start, invoice.period_end  # BG-14 invoicing period
    intra_community = any(row["BT-118"] == "K" for row in breakdown)
    if not fulfilled or intra_community:
        # invoiced before delivery, or goods sent to another EU country (BR-IC-12): the deliver-to party
        # (the buyer) is the delivery information
        data["BG-13"] = {key: value for key, value in data["BG-7"].items() if key != "vat_identifier"}
        if intra_community and in_northern_ireland(buyer):  # goods moved to Northern Ireland go to XI (the
            data["BG-13"]["country_code"] = "XI"            # EU's code for it), whatever its postal country
    iban = _bank_iban(settings)
    if iban:
        data.update({"BT-81": "58", "BT-84": iban, "BT-83": invoice.number})
        bic = _bank_account(settings)[1]
        if bic:
            data["BT-86"] = bic
    return data
