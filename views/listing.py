"""Sorting, filtering and paging for the record lists (one helper used by every list page), and the
CSV export of a list with its current filter and sort."""
import csv
import datetime
import io
import math
from dataclasses import dataclass, field
from decimal import Decimal

from flask import Response, g, request, stream_with_context

PER_PAGE = 50


@dataclass
class ListPage:
    """One page of a list, with what the table headers and pager need to build their links."""

    items: list
    total: int
    page: int
    pages: int
    sort: str
    descending: bool
    args: dict = field(default_factory=dict)

    def link_args(self, **overrides):
        """The current query arguments with some replaced (None removes one)."""
        merged = dict(self.args)
        merged.update(overrides)
        return {k: v for k, v in merged.items() if v not in (None, "")}

    def sort_args(self, key):
        """Arguments that sort by `key` (toggling the direction when it is already the sort)."""
        descending = not self.descending if key == self.sort else False
        return self.link_args(sort=("-" if descending else "") + key, page=None)

    @property
    def first_index(self):
        return 0 if not self.total else (self.page - 1) * PER_PAGE + 1

    @property
    def last_index(self):
        return min(self.total, self.page * PER_PAGE)


def _sort(sorts, default_sort, args, tiebreak):
    """(key, descending, ORDER BY terms) for the `sort` argument ("-name" is descending)."""
    raw = (args.get("sort") or default_sort)[:40]
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in sorts:
        descending = default_sort.startswith("-")
        key = default_sort.lstrip("-")
    expression = sorts[key]
    order = [expression.desc(nulls="LAST") if descending else expression.asc(nulls="LAST")]
    if tiebreak is not None:
        order.append(tiebreak)
    return key, descending, order


def paginate(query, sorts, default_sort, args=None, per_page=PER_PAGE, tiebreak=None):
    """Sort `query` by one of `sorts` (name -> expression; "-name" is descending) and cut a page."""
    args = dict(args if args is not None else request.args.items())
    key, descending, order = _sort(sorts, default_sort, args, tiebreak)
    try:
        page = max(1, min(int(args.get("page", 1)), 10 ** 6))
    except (TypeError, ValueError):
        page = 1
    total = query.count()
    pages = max(1, math.ceil(total / per_page))
    page = min(page, pages)
    items = list(query.order_by(*order).paginate(page, per_page))
    return ListPage(items, total, page, pages, key, descending, args)


# ----- CSV export ----------------------------------------------------------------------------------

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FLUSH_BYTES = 64 * 1024


def csv_cell(value):
    """One value as a spreadsheet reads it: plain decimals, ISO dates, yes/no; text that a spreadsheet
    would run as a formula (=, +, -, @ first) is prefixed with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (Decimal, int)):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, datetime.date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def export_csv(name, query, sorts, default_sort, columns, tiebreak=None):
    """The whole filtered list (not one page) as a CSV download, in the list's sort order, streamed in
    chunks; `columns` are (header, value of a record). The export is written to the security log."""
    from models import SecurityEvent
    from models.base import today, write_transaction
    args = {k: v for k, v in request.args.items() if k not in ("page",)}
    _, _, order = _sort(sorts, default_sort, args, tiebreak)
    total = query.count()
    described = ", ".join(f"{k}={v[:40]}" for k, v in sorted(args.items()) if v)
    with write_transaction():
        SecurityEvent.log("export", actor=g.user, detail=f"{name}: {total} rows" + (f" ({described})" if described else ""))

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # a BOM, so spreadsheet programs read UTF-8 (umlauts, €) correctly
        writer.writerow([header for header, _ in columns])
        for record in query.order_by(*order).iterator():
            writer.writerow([csv_cell(value(record)) for _, value in columns])
            if buffer.tell() > FLUSH_BYTES:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(rows()), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{today().isoformat()}.csv"'
    return response
