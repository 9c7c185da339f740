"""Reading the first worksheet of an Excel .xlsx workbook, row by row, in bounded memory.

An .xlsx file is a zip of XML parts (ECMA-376): xl/workbook.xml names the sheets in tab order,
xl/_rels/workbook.xml.rels says which part holds each, xl/sharedStrings.xml holds the texts that cells
refer to by index, xl/styles.xml the number formats that make a number a date. The worksheet is
streamed with ElementTree's C parser and each row is dropped once read, so memory holds the shared
strings and one row, not the sheet.

Cells come out as text a person would type: texts as written, numbers with the digits Excel stored (no
float arithmetic), booleans as yes/no, dates as ISO dates (date-times as "YYYY-MM-DD HH:MM:SS"), errors
such as #N/A as written. Missing cells and rows (Excel leaves empty ones out) come out empty, so row
numbers stay those of the sheet.
"""
import datetime
import posixpath
import re
import xml.etree.ElementTree as ElementTree
import zipfile

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
# Built-in number formats that show dates or times (ECMA-376 Part 1, 18.8.30, and the East Asian ones).
DATE_FORMAT_IDS = set(range(14, 23)) | set(range(27, 37)) | set(range(45, 48)) | set(range(50, 59))
_LITERALS = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]')
_COLUMN = re.compile(r"[A-Z]{1,3}")
MAX_STRINGS_CHARS = 64 * 1024 * 1024  # shared strings kept in memory (a zip bomb stops here)


class XlsxError(ValueError):
    """A file that is not a readable .xlsx workbook (the message says why)."""


def is_date_format(code):
    """True when an Excel number format code shows a date or a time (d, m, y, h or s outside quotes)."""
    text = _LITERALS.sub("", code or "").lower()
    return text not in ("", "general") and any(ch in text for ch in "dmyhs")


def column_index(reference):
    """'A1' -> 0, 'AB12' -> 27 (None when the reference is not a cell reference)."""
    match = _COLUMN.match(reference or "")
    if match is None:
        return None
    index = 0
    for letter in match.group(0):
        index = index * 26 + ord(letter) - 64
    return index - 1


def serial_to_text(serial, date1904=False):
    """An Excel date serial number -> ISO date, or date and time when it has a time of day."""
    base = datetime.datetime(1904, 1, 1) if date1904 else datetime.datetime(1899, 12, 30)
    moment = base + datetime.timedelta(days=serial)
    moment = moment.replace(microsecond=0) + datetime.timedelta(seconds=round(moment.microsecond / 1e6))
    if serial < 1 and not date1904:  # a time of day without a date
        return moment.time().isoformat()
    return moment.date().isoformat() if moment.time() == datetime.time() else moment.isoformat(sep=" ")


class Workbook:
    """The first worksheet of an .xlsx file: `rows()` yields each row's cells as a list of strings."""

    def __init__(self, path):
        try:
            self.zip = zipfile.ZipFile(path)
            names = set(self.zip.namelist())
            self.sheet_part, self.date1904 = self._first_sheet(names)
            self.strings = self._shared_strings() if "xl/sharedStrings.xml" in names else []
            self.date_styles = self._date_styles() if "xl/styles.xml" in names else set()
        except XlsxError:
            raise
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, ElementTree.ParseError, EOFError) as exc:
            raise XlsxError(f"This is not a readable XLSX workbook ({type(exc).__name__}).") from None

    def close(self):
        self.zip.close()

    def _parse(self, part):
        with self.zip.open(part) as fh:
            return ElementTree.parse(fh).getroot()

    def _first_sheet(self, names):
        if "xl/workbook.xml" not in names:
            raise XlsxError("This is not an Excel workbook (it has no xl/workbook.xml).")
        workbook = self._parse("xl/workbook.xml")
        properties = workbook.find(f"{MAIN}workbookPr")
        date1904 = properties is not None and properties.get("date1904") in ("1", "true")
        sheet = workbook.find(f"{MAIN}sheets/{MAIN}sheet")
        if sheet is None:
            raise XlsxError("The workbook has no worksheet.")
        target = None
        if "xl/_rels/workbook.xml.rels" in names:
            for rel in self._parse("xl/_rels/workbook.xml.rels").iter(f"{PACKAGE_REL}Relationship"):
                if rel.get("Id") == sheet.get(f"{REL}id"):
                    target = rel.get("Target")
        if not target:
            raise XlsxError("The workbook does not say where its first worksheet is.")
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
        if part not in names:
            raise XlsxError("The workbook's first worksheet is missing from the file.")
        return part, date1904

    def _shared_strings(self):
        strings, size = [], 0
        with self.zip.open("xl/sharedStrings.xml") as fh:
            for _, element in ElementTree.iterparse(fh):
                if element.tag == f"{MAIN}si":
                    text = _text_of(element)
                    size += len(text)
                    if size > MAX_STRINGS_CHARS:
                        raise XlsxError("The workbook's texts are too large to import; save the sheet as CSV.")
                    strings.append(text)
                    element.clear()
        return strings

    def _date_styles(self):
        styles = self._parse("xl/styles.xml")
        custom = {int(f.get("numFmtId", -1)): f.get("formatCode", "") for f in styles.iter(f"{MAIN}numFmt")}
        cell_formats = styles.find(f"{MAIN}cellXfs")
        result = set()
        for index, xf in enumerate(cell_formats if cell_formats is not None else []):
            number_format = int(xf.get("numFmtId", 0))
            if number_format in DATE_FORMAT_IDS or (number_format in custom and is_date_format(custom[number_format])):
                result.add(index)
        return result

    def rows(self, max_columns=None):
        """Each row of the first worksheet as a list of cell texts, empty rows included (bounded memory)."""
        number = 0
        try:
            with self.zip.open(self.sheet_part) as fh:
                data = None
                for event, element in ElementTree.iterparse(fh, events=("start", "end")):
                    if event == "start":
                        if element.tag == f"{MAIN}sheetData":
                            data = element
                        continue
                    if element.tag != f"{MAIN}row":
                        continue
                    declared = element.get("r")
                    position = int(declared) if declared and declared.isdigit() else number + 1
                    while number + 1 < position:  # rows Excel left out because they are empty
                        number += 1
                        yield []
                    number = max(number + 1, position)
                    yield self._cells(element, max_columns)
                    if data is not None:
                        data.clear()
        except (zipfile.BadZipFile, OSError, EOFError, ElementTree.ParseError) as exc:
            raise XlsxError(f"The worksheet could not be read ({type(exc).__name__}).") from None

    def _cells(self, row, max_columns):
        cells = []
        for cell in row.iter(f"{MAIN}c"):
            index = column_index(cell.get("r"))
            if index is None:
                index = len(cells)
            if max_columns is not None and index >= max_columns:
                continue
            while len(cells) < index:
                cells.append("")
            cells.append(self._value(cell))
        return cells

    def _value(self, cell):
        kind = cell.get("t", "n")
        if kind == "inlineStr":
            inline = cell.find(f"{MAIN}is")
            return _text_of(inline) if inline is not None else ""
        raw = cell.findtext(f"{MAIN}v")
        if raw is None:
            return ""
        if kind == "s":
            try:
                return self.strings[int(raw)]
            except (ValueError, IndexError):
                raise XlsxError("A cell refers to a text the workbook does not have.") from None
        if kind == "b":
            return "yes" if raw.strip() == "1" else "no"
        style = cell.get("s", "")
        if kind == "n" and style.isdigit() and int(style) in self.date_styles:
            try:
                return serial_to_text(float(raw), self.date1904)
            except (ValueError, OverflowError):
                return raw
        return raw.replace("\x00", "")  # n (as written), str (a formula's text), e (#N/A…), d (ISO already)


def _text_of(element):
    """The text of a shared or inline string: its <t>, or its rich-text runs' <t>s (not phonetic guides)."""
    direct = element.find(f"{MAIN}t")
    if direct is not None:
        return (direct.text or "").replace("\x00", "")
    return "".join(run.findtext(f"{MAIN}t") or "" for run in element.findall(f"{MAIN}r")).replace("\x00", "")
