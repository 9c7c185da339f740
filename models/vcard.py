"""vCard (.vcf) reading: versions 2.1, 3.0 and 4.0, one or many cards per file, streamed card by card.

Folded lines are unfolded (CRLF followed by a space or tab), 2.1 QUOTED-PRINTABLE values are decoded
in their CHARSET (with soft line breaks), escaped \\\\ \\; \\, \\n are unescaped, and binary properties
(PHOTO, LOGO, SOUND, KEY and anything BASE64-encoded) are skipped. Each card becomes a plain dict with
the columns of COLUMNS, so it goes through the same mapping, preview and checks as a CSV row.
"""
import quopri
import re

from .countries import COUNTRY_ALIASES, ISO_COUNTRY_NAMES

COLUMNS = ("Full name", "First name", "Last name", "Company", "Job title", "Email", "Phone", "Street",
           "Postal code", "City", "Country", "Notes")
BINARY_PROPERTIES = {"PHOTO", "LOGO", "SOUND", "KEY"}
MAX_CARD_BYTES = 1024 * 1024
# A country name as address books write it -> its ISO code: the English name of every country, or another name.
COUNTRY_CODES = dict({name.lower(): code for code, name in ISO_COUNTRY_NAMES.items()}, **COUNTRY_ALIASES)


class VCardError(ValueError):
    """A file that is not a readable vCard file."""


def _decode(raw, charset=None):
    """Bytes of a value -> text: the declared charset, else UTF-8, else cp1252."""
    for encoding in ([charset] if charset else []) + ["utf-8", "cp1252"]:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return raw.decode("utf-8", "replace")


def unescape(text):
    """Undo vCard escapes: \\\\ \\; \\, \\n (and \\N)."""
    return re.sub(r"\\([\\;,nN:])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


def split_structured(text):
    """Split a structured value (N, ADR, ORG) on unescaped semicolons, then unescape each part."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ";":
            parts.append(unescape("".join(current)))
            current = []
        else:
            current.append(char)
    parts.append(unescape("".join(current)))
    return [p.strip() for p in parts]


def _split_params(head):
    """'item1.TEL;TYPE=WORK;PREF' -> ('TEL', {'TYPE': ['WORK'], 'PREF': ['']})."""
    pieces = head.split(";")
    name = pieces[0].rsplit(".", 1)[-1].strip().upper()
    params = {}
    for piece in pieces[1:]:
        key, sep, value = piece.partition("=")
        key = key.strip().upper()
        if not sep:  # vCard 2.1 bare parameters: TEL;WORK;VOICE or ;QUOTED-PRINTABLE
            if key in ("QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT"):
                params.setdefault("ENCODING", []).append(key)
            else:
                params.setdefault("TYPE", []).append(key)
            continue
        params.setdefault(key, []).extend(v.strip().strip('"') for v in value.split(","))
    return name, params


def _logical_lines(raw_lines):
    """Unfold physical lines (bytes, line ends stripped) into logical lines; QUOTED-PRINTABLE soft
    breaks (a line ending in '=') are joined as well."""
    current = None
    for raw in raw_lines:
        if current is not None and raw[:1] in (b" ", b"\t"):
            current += raw[1:]
            continue
        if current is not None and b"QUOTED-PRINTABLE" in current.split(b":", 1)[0].upper() \
                and current.endswith(b"=") and raw:
            current = current[:-1] + raw  # a soft line break inside a quoted-printable value
            continue
        if current is not None:
            yield current
        current = raw
    if current is not None:
        yield current


def parse_card(raw_lines):
    """One card's physical lines (bytes) -> dict of COLUMNS (missing ones absent)."""
    props = []
    for line in _logical_lines(raw_lines):
        if b":" not in line:
            continue
        head, value = line.split(b":", 1)
        name, params = _split_params(_decode(head))
        encoding = [e.upper() for e in params.get("ENCODING", [])]
        if name in BINARY_PROPERTIES or "BASE64" in encoding or "B" in encoding:
            continue
        charset = (params.get("CHARSET") or [None])[0]
        if "QUOTED-PRINTABLE" in encoding:
            text = _decode(quopri.decodestring(value), charset)
        else:
            text = _decode(value, charset)
        props.append((name, params, text.strip()))
    card, emails, phones, notes, extra_notes = {}, [], [], [], []
    for name, params, text in props:
        if name == "FN":
            card["Full name"] = unescape(text)
        elif name == "N":
            parts = split_structured(text) + [""] * 5
            card["Last name"], card["First name"] = parts[0], " ".join(p for p in (parts[1], parts[2]) if p)
        elif name == "ORG":
            card["Company"] = split_structured(text)[0]
        elif name == "TITLE":
            card["Job title"] = unescape(text)
        elif name in ("EMAIL", "TEL"):  # 4.0 may write them as URIs: mailto:…, tel:…
            value, scheme = unescape(text), "mailto:" if name == "EMAIL" else "tel:"
            if value.lower().startswith(scheme):
                value = value[len(scheme):]
            if value:
                (emails if name == "EMAIL" else phones).append(value.strip())
        elif name == "ADR" and "Street" not in card:
            parts = split_structured(text) + [""] * 7
            card["Street"] = ", ".join(p for p in (parts[2], parts[1]) if p)
            card["City"], card["Postal code"] = parts[3], parts[5]
            country = parts[6]
            code = COUNTRY_CODES.get(country.lower()) or (country.upper() if len(country) == 2 and country.isalpha()
                                                           else None)  # a name first: UK is GB
            if code:
                card["Country"] = code
            elif country:
                extra_notes.append(f"Country: {country}")
            if parts[4]:
                extra_notes.append(f"Region: {parts[4]}")
        elif name == "NOTE":
            notes.append(unescape(text))
    if not card.get("Full name"):
        full = " ".join(p for p in (card.get("First name"), card.get("Last name")) if p)
        if full:
            card["Full name"] = full
    if emails:
        card["Email"] = emails[0]
        if emails[1:]:
            extra_notes.append("Other emails: " + ", ".join(emails[1:]))
    if phones:
        card["Phone"] = phones[0]
        if phones[1:]:
            extra_notes.append("Other phones: " + ", ".join(phones[1:]))
    all_notes = [n for n in notes if n] + extra_notes
    if all_notes:
        card["Notes"] = "\n".join(all_notes)
    return card


def iter_cards(fh, offset=0):
    """Cards of a binary file object from byte `offset`: yields (card dict, byte offset after the card).

    Reads line by line (never the whole file); text outside BEGIN:VCARD … END:VCARD is ignored.
    """
    fh.seek(offset)
    lines, size, inside = [], 0, False
    while True:
        raw = fh.readline(MAX_CARD_BYTES + 1)
        if not raw:
            break
        line = raw.rstrip(b"\r\n")
        if len(raw) > MAX_CARD_BYTES:
            raise VCardError("A line of the vCard file is too long.")
        upper = line.strip().upper()
        if not inside:
            if upper.startswith(b"\xef\xbb\xbf"):
                upper = upper[3:]
            if upper == b"BEGIN:VCARD":
                inside, lines, size = True, [], 0
            continue
        if upper == b"END:VCARD":
            inside = False
            yield parse_card(lines), fh.tell()
            continue
        size += len(raw)
        if size > MAX_CARD_BYTES:
            raise VCardError("A card of the vCard file is larger than 1 MB.")
        lines.append(line)
    if inside:
        raise VCardError("The last card has no END:VCARD line: the file is cut off.")


def looks_like_vcard(head):
    """True when the first bytes of a file start a vCard."""
    text = head.lstrip(b"\xef\xbb\xbf \r\n\t").upper()
    return text.startswith(b"BEGIN:VCARD")
