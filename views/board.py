"""The Kanban board: columns with SQL totals, paged cards, filters in the URL."""
from flask import Blueprint, abort, current_app, flash, g, make_response, redirect, render_template, request, url_for

from markupsafe import Markup

from models import (COLUMNS, Account, Contact, Invoice, Lead, NotAllowed, NotFound, Opportunity, Order, Product, Quote,
                    RuleNotMet, StaleVersion, ValidationError)
from models.board import (BoardFilter, attach_next_activities, column_cards, column_headers, invoice_states,
                          writable_cards)
from models.lead import DISQUALIFY_REASONS, TIMEFRAMES
from models.opportunity import CHECKLISTS, COLUMN_LABELS, LOST_REASONS

from .common import (url_record, current_settings, from_board, in_reach, is_htmx, load_record, owner_choices, page_args,
                     parse_record_key, render, render_fragment)

bp = Blueprint("board", __name__)


@bp.get("/")
def index():
    """The board is the home page."""
    return redirect(url_for("board.board"))


def _board_context(flt):
    page_size = current_app.config["BOARD_PAGE_SIZE"]
    headers = column_headers(flt)
    cards = {stage: column_cards(stage, flt, 0, page_size) for stage in COLUMNS}
    every_card = [card for stage in COLUMNS for card in cards[stage]]
    return {"columns": COLUMNS, "headers": headers, "cards": cards, "owners": owner_choices(),
            **_card_context(flt, every_card)}


def _panel_parts():
    from . import invoices, leads, opportunities, orders, quotes
    return {"lead": (Lead, "leads/_panel.html", leads.panel_context),
            "opportunity": (Opportunity, "opportunities/_panel.html", opportunities.panel_context),
            "quote": (Quote, "quotes/_panel.html", quotes.quote_context),
            "order": (Order, "orders/_panel.html", orders.order_context),
            "invoice": (Invoice, "invoices/_panel.html", invoices.invoice_context)}


def _panel_html(record, oob=False):
    """The detail panel of a record (also used out-of-band after a move)."""
    model, template, context = _panel_parts()[record.record_type]
    fresh = model.get_by_id(record.id)
    return Markup(render_template(template, oob=oob, **context(fresh)))


def _panel_record(key):
    """'quote:3' -> the record whose panel the board URL asks for (None when unknown)."""
    parsed = parse_record_key(key, {kind: parts[0] for kind, parts in _panel_parts().items()})
    if parsed is None:
        return None
    model, pk = parsed
    return load_record(model, pk, write=False)


@bp.get("/board")
def board():
    """The whole board (the filter form swaps just the board fragment and pushes the URL);
    ?panel=lead:12 opens that record's panel beside it, so a panel can be linked and reloaded."""
    flt = BoardFilter.from_args(request.args, g.user)
    record = _panel_record(request.args.get("panel"))
    panel = _panel_html(record) if record is not None else None
    return render("board/board.html", "board/_board.html", panel=panel, **_board_context(flt))


@bp.get("/board/panel/close")
def close_panel():
    """An empty panel region (the URL goes back to the plain board)."""
    return render("board/board.html", "board/_panel_region.html", panel=None,
                  **(_board_context(BoardFilter.from_args(page_args(), g.user)) if not is_htmx() else {}))


@bp.get("/board/column/<stage>")
def column_page(stage):
    """The next page of a column's cards (requested when 'load more' scrolls into view)."""
    if stage not in COLUMNS:
        abort(404)
    flt = BoardFilter.from_args(request.args, g.user)
    page_size = current_app.config["BOARD_PAGE_SIZE"]
    try:
        offset = max(0, min(int(request.args.get("offset", "0")), 10 ** 7))
    except ValueError:
        abort(400)
    cards = column_cards(stage, flt, offset, page_size)
    header = column_headers(flt, [stage])[stage]
    return render("board/column_page.html", "board/_more_cards.html", stage=stage, cards=cards, offset=offset,
                  header=header, **_card_context(flt, cards))


RECORD_TYPES = {"lead": Lead, "opportunity": Opportunity}
MOVE_META = ("csrf_token", "record", "to", "version", "dialog_fields", "panel",
             "self", "actor", "target", "expected_version")  # never passed on as move inputs

FIELD_SPECS = {
    "name": ("Name", "text", None),
    "email": ("Email", "email", None),
    "phone": ("Phone", "tel", None),
    "company": ("Company", "company", None),
    "budget_amount": ("Budget", "money", None),
    "purchase_timeframe": ("Purchase timeframe", "select", [(t, t.capitalize()) for t in TIMEFRAMES]),
    "account": ("Account", "duplicate", None),
    "contact": ("Contact", "duplicate", None),
    "line": ("First line", "line", None),
    "estimated_close_date": ("Estimated close date", "date", None),
    "customer": ("Customer", "customer", None),
    "activate_quote": ("Send the quote", "confirm", None),
    "valid_until": ("Quote valid until", "date", None),
    "actual_revenue": ("Actual revenue", "money", None),
    "actual_close_date": ("Actual close date", "date", None),
    "close_reason": ("Reason lost", "select", [(r, r.capitalize()) for r in LOST_REASONS]),
    "competitor": ("Competitor", "text", None),
    "close_note": ("Note", "textarea", None),
    "reason": ("Reason", "select", [(r, r.capitalize()) for r in DISQUALIFY_REASONS]),
    "note": ("Note", "textarea", None),
}


def _load_record(key):
    """'lead:12' -> the Lead (404 when it does not exist; 400 when the key is malformed)."""
    parsed = parse_record_key(key, RECORD_TYPES)
    if parsed is None:
        raise ValidationError("Unknown card.", {"record": "Give a card as lead:ID or opportunity:ID."})
    model, pk = parsed
    record = load_record(model, pk, write=True, select="one_card_query")  # with all its card shows
    if record is None:
        raise NotFound("That card does not exist (any more).")
    return record


def _board_filter():
    """The filter of the page the request came from (so headers are recomputed with it)."""
    return BoardFilter.from_args(page_args(), g.user)


_CHECKLISTS_HTML = {}


def checklist_html(stage):
    """A column header's checklist (what a card needs to leave the column): the same for every request,
    so rendered once per process."""
    html = _CHECKLISTS_HTML.get(stage)
    if html is None:
        html = _CHECKLISTS_HTML[stage] = Markup(render_template(
            "board/_checklist.html", stage=stage, label=COLUMN_LABELS[stage], items=CHECKLISTS.get(stage)))
    return html


def _card_context(flt, records, writable=None):
    """What card templates need besides the cards; `writable` (the keys of cards the user may change)
    is looked up unless the caller knows it."""
    settings = current_settings()
    attach_next_activities(records)
    board_url = url_for("board.board", **flt.query_args())
    return {"flt": flt, "settings": settings, "labels": COLUMN_LABELS, "checklist_html": checklist_html,
            "move_url": url_for("board.move"),  # the same for every card: built once, not per card
            "panel_url_prefix": board_url + ("&" if "?" in board_url else "?") + "panel=",
            "page_size": current_app.config["BOARD_PAGE_SIZE"],
            "invoices": invoice_states(records),
            "writable": writable if writable is not None else writable_cards(records, g.user)}


def card_refresh(record):
    """Out-of-band: the record's card re-rendered in place and its column header (after an edit),
    only when the request came from the board (elsewhere there is no card to update)."""
    if not from_board() or record.column is None:
        return ""
    flt = _board_filter()
    fresh = type(record).card(record.id)
    header = column_headers(flt, [fresh.column])[fresh.column]
    html = render_template("board/_card.html", card=fresh, oob_replace=True, **_card_context(flt, [fresh]))
    html += render_template("board/_header.html", header=header, oob=True, **_card_context(flt, []))
    return html


def card_update(record, columns):
    """Out-of-band card + header updates for a record that changed outside a move (quick-create)."""
    return _oob_cards(_board_filter(), record, [], columns)


def _oob_cards(flt, record, old_keys, columns, writable=None, toast=None, current=False):
    """Out-of-band updates: drop the card(s) wherever they are, put the fresh card in its column,
    and re-render the headers of the given columns (only for requests from the board page); plus
    the toast, if any, in the same rendering. current=True: `record` is as the database holds it now,
    with what its card shows (not read again)."""
    if not from_board():
        return render_template("_toast.html", toast=toast) if toast else ""
    fresh = record if current else type(record).card(record.id)
    headers = column_headers(flt, columns) if columns else {}
    return render_template("board/_oob_update.html", card=fresh, old_keys=old_keys, toast=toast,
                           headers=[headers[c] for c in columns if c in headers],
                           **_card_context(flt, [fresh], writable))


def _dialog(record, target, exc, version, status, form=None):
    """The fill-in-to-move dialog (422) asking for exactly the missing fields."""
    flt = _board_filter()
    fields = list(exc.fields) if isinstance(exc, RuleNotMet) else \
        [f for f in (form or {}).get("dialog_fields", "").split(",") if f in FIELD_SPECS]
    optional = list(getattr(exc, "optional", ()))
    if not fields or any(f not in FIELD_SPECS for f in fields):
        return None
    context = {"record": record, "record_key": f"{record.record_type}:{record.id}", "target": target,
               "version": version, "fields": fields, "optional": optional, "specs": FIELD_SPECS,
               "error": exc, "errors": exc.fields if not isinstance(exc, RuleNotMet) else {},
               "defaults": getattr(exc, "defaults", {}), "choices": getattr(exc, "choices", {}),
               "values": form or {}, "labels": COLUMN_LABELS, "flt": flt,
               "carried": {k: v for k, v in (form or {}).items()
                           if k not in MOVE_META and k not in fields and k not in optional
                           and not k.startswith("line_") and k != "private_buyer"},
               "products": list(Product.active_products()),
               "accounts": list(in_reach(Account.select(Account.id, Account.name)).order_by(Account.name).limit(500)),
               "contacts": list(in_reach(Contact.select(Contact.id, Contact.name)).order_by(Contact.name).limit(500))}
    if is_htmx():
        body = render_template("board/_dialog.html", **context)
        body += _oob_cards(flt, record, [f"{record.record_type}-{record.id}"], [])
        return make_response(body, status, {"Vary": "HX-Request"})
    return render("board/move.html", None, status, **context)


@bp.post("/board/move")
def move():
    """Move a card (drag, menu, dialog, undo): the model applies the rule; 422 asks, 409 refuses."""
    form = request.form
    target = (form.get("to") or "").strip()
    version = form.get("version")
    record = _load_record(form.get("record"))
    inputs = {k: v for k, v in form.items() if k not in MOVE_META}
    old_key = f"{record.record_type}-{record.id}"
    joined = record.joined_rows()  # the card's names, given back after the move re-reads the record
    flt = _board_filter()
    try:
        result = record.move_to(g.user, target, expected_version=version, **inputs)
    except (RuleNotMet, ValidationError) as exc:
        fresh = type(record).get_by_id(record.id)
        if isinstance(exc, RuleNotMet) and exc.step and exc.step != target:
            return _refused(flt, fresh, old_key, _skip_error(exc, target), 422)
        response = _dialog(fresh, target, exc, version, 422, form)
        if response is not None:
            return response
        return _refused(flt, fresh, old_key, _explained(exc), 422)
    except (StaleVersion, NotAllowed) as exc:
        return _refused(flt, type(record).get_by_id(record.id), old_key, exc, 409)
    moved = result.record
    message = (f"Moved to {COLUMN_LABELS.get(result.to_column, result.to_column)}." if result.changed
               else f"Already in {COLUMN_LABELS.get(result.to_column, result.to_column)}.")
    undo = None
    if result.changed and moved.record_type == record.record_type and result.from_column in moved.move_targets():
        undo = {"record": f"{moved.record_type}:{moved.id}", "to": result.from_column, "version": moved.version}
    if not is_htmx():
        flash(f"{moved.title}: {message}", "info")
        return redirect(url_for("board.board", **flt.query_args()))
    toast = {"message": f"{moved.title}: {message}", "kind": "info", "undo": undo}
    same = moved is record  # written just now in this request: its card needs no second read
    body = _oob_cards(flt, moved.reattach(joined) if same else moved, [old_key],
                      [result.from_column, result.to_column], writable={(moved.record_type, moved.id)},
                      toast=toast, current=same)  # loaded for writing: the user may change it
    push_url = None
    if form.get("panel"):
        body += _panel_html(moved, oob=True)
        if moved.record_type != record.record_type:
            from . import RECORD_ENDPOINTS
            push_url = (url_for("board.board", panel=f"{moved.record_type}:{moved.id}", **flt.query_args())
                        if from_board() else url_for(RECORD_ENDPOINTS[moved.record_type],
                                                     **{f"{moved.record_type}_id": moved.id}))
    return render_fragment(body, 200, push_url=push_url)


def _explained(exc):
    """A refusal whose missing data cannot be asked in the dialog (e.g. company settings): say all of it."""
    details = " ".join(dict.fromkeys(exc.fields.values()))
    return NotAllowed(f"{exc.message} {details}".strip())


def _skip_error(exc, target):
    """A skip whose first step is unmet can never succeed as asked: say which step and what it needs."""
    needs = "; ".join(dict.fromkeys(exc.fields.values()))
    return NotAllowed(f"Cannot skip to {COLUMN_LABELS.get(target, target)}: "
                      f"{COLUMN_LABELS.get(exc.step, exc.step)} comes first. {needs}")


def _refused(flt, record, old_key, exc, status):
    """A refused move: the card is put back where it really is and a toast says why."""
    if not is_htmx():
        flash(exc.message, "error")
        return redirect(url_for("board.board", **flt.query_args()))
    body = _oob_cards(flt, record, [old_key], [], toast={"message": exc.message, "kind": "error"})
    return render_fragment(body, status)


@bp.get("/board/card/<kind>/<int:record_id>")
def card(kind, record_id):
    """The card where it really is (used when a dialog is cancelled): puts it back in its column."""
    record = url_record("record_id")
    if not is_htmx():
        return redirect(url_for("board.board"))
    return render_fragment(_oob_cards(_board_filter(), record, [f"{kind}-{record_id}"], []), 200)
