"""Sorting, filtering and paging for the record lists (one helper used by every list page)."""
import math
from dataclasses import dataclass, field

from flask import request

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


def paginate(query, sorts, default_sort, args=None, per_page=PER_PAGE, tiebreak=None):
    """Sort `query` by one of `sorts` (name -> expression; "-name" is descending) and cut a page."""
    args = dict(args if args is not None else request.args.items())
    raw = (args.get("sort") or default_sort)[:40]
    descending = raw.startswith("-")
    key = raw.lstrip("-")
    if key not in sorts:
        descending = default_sort.startswith("-")
        key = default_sort.lstrip("-")
    try:
        page = max(1, min(int(args.get("page", 1)), 10 ** 6))
    except (TypeError, ValueError):
        page = 1
    total = query.count()
    pages = max(1, math.ceil(total / per_page))
    page = min(page, pages)
    expression = sorts[key]
    order = [expression.desc(nulls="LAST") if descending else expression.asc(nulls="LAST")]
    if tiebreak is not None:
        order.append(tiebreak)
    items = list(query.order_by(*order).paginate(page, per_page))
    return ListPage(items, total, page, pages, key, descending, args)
