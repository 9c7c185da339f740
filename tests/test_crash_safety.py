"""Crash safety: writers killed with SIGKILL at random moments leave a consistent, durable database.

Two writer processes run a random load of real model calls (stage moves forward, back, lost and reopened,
quote activation and revision through moves, wins, line and field edits, invoice issues, Fulfill ->
Invoiced moves that fulfil and issue in one step, skips from an open stage straight to Invoiced, payments)
on one database; the test kills one of them
with SIGKILL at a random moment, KILLS times, restarting a writer after each kill. The writers are forked
from a warm parent (models imported, WeasyPrint warmed up), as gunicorn forks its workers, so a restart
costs milliseconds and the kills land in every phase: inside a transaction, in a PDF render under the
write lock, between COMMIT and the log write, while the other writer waits for the lock.

Each writer appends one line to its own log AFTER a call returned (i.e. after COMMIT) — what it knows
was committed. Afterwards, from a fresh connection:
  * SQLite: PRAGMA integrity_check is ok, no foreign-key violations, money columns hold integers;
  * durability: everything a writer logged is in the database;
  * money: every document's stored totals equal the sum of its rounded lines (minor units), per-rate
    breakdowns add up, copies (quote -> order -> invoice) agree, and each frozen invoice's Factur-X
    XML carries the stored totals and a breakdown that adds up to them;
  * history: every committed change bumped the record's version once and wrote one event
    (version == number of events, + 1 for opportunities, which are born by the lead's qualify event);
  * numbers: invoice, quote and order numbers are unique and gapless, sequences match;
  * frozen documents: every issued invoice and every activated quote has its PDF bytes whose SHA-256
    is the stored one and the one its history event recorded; drafts have none;
  * no half states: each deal's column is the one its documents say, won deals have their won quote
    and order, lost deals no open quote, one live invoice per order, an issued invoice's order fulfilled.

Durability guarantee stated by this test. SQLite runs with journal_mode=WAL and synchronous=NORMAL
(models/base.py): a COMMIT has appended the transaction to the WAL file before it returns, so a process
crash (SIGKILL) never loses a committed transaction; only an OS crash or power loss could lose the last
commits before a checkpoint (not simulated here). PostgreSQL (synchronous_commit=on) has the commit in its
WAL on disk before COMMIT returns; killing the client cannot undo it.

Run as a script (`python tests/test_crash_safety.py zygote URL LOG_DIR ACTOR_ID`) this file is the warm
parent that forks the writers on request; pytest only imports it.
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import traceback
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

KILLS = 20
WRITERS = 2
KILL_SOON, KILL_LATE = (0.02, 0.4), (0.4, 2.0)  # seconds before the next kill: half soon, half late
WRITER_LIFETIME = 25          # a writer that is never killed stops by itself (bounded run)
MIN_OPEN_DEALS = 5            # wins stop when fewer open deals are left (keeps the move load going)
OPEN_DEALS, WON_DEALS, DRAFT_INVOICES = 8, 3, 5


# ----- the writer (runs in a forked child) ------------------------------------------------------------------

def _pick(rng, query):
    rows = list(query)
    return rng.choice(rows) if rows else None


def _weighted(rng, options):
    total = sum(weight for _, weight in options)
    point = rng.uniform(0, total)
    for value, weight in options:
        point -= weight
        if point <= 0:
            return value
    return options[-1][0]


def op_move(rng, actor):
    """A stage move of an open or lost deal (forward, back, lost, reopen, win)."""
    from builders import win_inputs
    from models import Opportunity
    from models.opportunity import LOST_REASONS
    opp = _pick(rng, Opportunity.select().where(Opportunity.status != "won"))
    if opp is None:
        return None
    inputs = {}
    if opp.status == "lost":
        target = opp.lost_from
    else:
        target = _weighted(rng, {"develop": [("propose", 8), ("lost", 1), ("invoiced", 0.5)],
                                 "propose": [("develop", 4), ("close", 3), ("lost", 1), ("invoiced", 0.5)],
                                 "close": [("propose", 4), ("develop", 2), ("fulfill", 2), ("lost", 1),
                                           ("invoiced", 0.5)]}[opp.column])
        if target in ("fulfill", "invoiced") and \
                Opportunity.select().where(Opportunity.status == "open").count() <= MIN_OPEN_DEALS:
            target = "propose" if opp.column != "propose" else "develop"
        if target == "lost":
            inputs = {"close_reason": rng.choice(LOST_REASONS), "competitor": "Rival AG"}
        elif target == "close":
            inputs = {"activate_quote": "1"}
        elif target == "fulfill":
            inputs = win_inputs(opp)
        elif target == "invoiced":  # a skip: every step on the way (quote sent, won, fulfilled, invoiced) in one
            quote = opp.quote_in("active") or opp.quote_in("draft")
            inputs = dict(win_inputs(opp, quote.net_total if quote else opp.net_total), activate_quote="1")
    result = opp.move_to(actor, target, expected_version=opp.version, **inputs)
    if not result.changed:
        return None
    deal = result.record
    return {"op": "move", "type": "opportunity", "id": deal.id, "version": deal.version, "column": deal.column}


def op_lines(rng, actor):
    """Add, change or remove a line of an open deal (totals are recomputed in the same transaction)."""
    from models import Opportunity
    opp = _pick(rng, Opportunity.select().where(Opportunity.status == "open"))
    if opp is None:
        return None
    rows = opp.line_rows()
    choice = rng.random()
    if len(rows) < 2 or (choice < 0.5 and len(rows) < 6):
        opp.add_line(actor, expected_version=opp.version, description=f"Item {rng.randint(1, 999)}",
                     quantity=str(Decimal(rng.randint(1, 5000)) / 1000), unit_price=f"{rng.randint(1, 900000) / 100:.2f}",
                     discount_pct=rng.choice(["0", "5", "12.5", "33.33"]), tax_rate=rng.choice(["0", "7", "19", "5.5"]))
    elif choice < 0.8:
        if not opp.update_line(actor, rng.choice(rows).id, expected_version=opp.version,
                               quantity=str(rng.randint(1, 40)), unit_price=f"{rng.randint(1, 90000) / 100:.2f}"):
            return None
    else:
        opp.remove_line(actor, rng.choice(rows).id, expected_version=opp.version)
    return {"op": "lines", "type": "opportunity", "id": opp.id, "version": opp.version,
            "net_total": str(opp.net_total), "tax_total": str(opp.tax_total)}


def op_field(rng, actor):
    """An inline field edit of an open deal."""
    from models import Opportunity
    opp = _pick(rng, Opportunity.select().where(Opportunity.status == "open"))
    if opp is None:
        return None
    name, value = rng.choice([("topic", f"Topic {rng.randint(1, 10 ** 6)}"), ("probability", str(rng.randint(0, 100)))])
    if not opp.update_fields(actor, expected_version=opp.version, **{name: value}):
        return None
    return {"op": "field", "type": "opportunity", "id": opp.id, "version": opp.version, name: value}


def op_issue(rng, actor):
    """Issue a draft invoice (number allocated and PDF frozen in the transaction; the deal follows)."""
    from models import Invoice
    invoice = _pick(rng, Invoice.select_without("pdf").where(Invoice.status == "draft"))
    if invoice is None or not invoice.issue(actor, expected_version=invoice.version):
        return None
    return {"op": "issue", "type": "invoice", "id": invoice.id, "version": invoice.version,
            "number": invoice.number, "sha256": invoice.pdf_sha256}


def op_invoice_move(rng, actor):
    """Fulfill -> Invoiced on the board: fulfil the order, create and issue its invoice, in one step."""
    from models import Invoice, Opportunity
    opp = _pick(rng, Opportunity.select().where((Opportunity.status == "won") & (Opportunity.column == "fulfill")))
    if opp is None:
        return None
    result = opp.move_to(actor, "invoiced", expected_version=opp.version)
    if not result.changed:
        return None
    number = (Invoice.select(Invoice.number).where((Invoice.opportunity == opp.id) & Invoice.number.is_null(False))
              .scalar())
    return {"op": "invoice_move", "type": "opportunity", "id": opp.id, "version": result.record.version,
            "column": result.record.column, "number": number}


def op_paid(rng, actor):
    from models import Invoice
    invoice = _pick(rng, Invoice.select_without("pdf").where(Invoice.status == "issued"))
    if invoice is None or not invoice.mark_paid(actor, expected_version=invoice.version):
        return None
    return {"op": "paid", "type": "invoice", "id": invoice.id, "version": invoice.version}


OPS = [(op_move, 50), (op_lines, 20), (op_field, 12), (op_issue, 6), (op_invoice_move, 4), (op_paid, 4)]


def run_writer(fd, actor_id, seed):
    """The writer loop of a forked child: random operations until killed (or WRITER_LIFETIME), logged to
    `fd` (opened by the zygote before the fork, so a writer killed at once still has its log)."""
    from models import DomainError, User, db
    rng = random.Random(seed)

    def log(**entry):
        entry["t"] = round(time.monotonic(), 4)
        os.write(fd, (json.dumps(entry, default=str) + "\n").encode())

    try:
        db.connect()
        actor = User.get_by_id(actor_id)
        deadline = time.monotonic() + WRITER_LIFETIME
        while time.monotonic() < deadline:
            op = _weighted(rng, OPS)
            log(begin=op.__name__)
            try:
                entry = op(rng, actor)
            except DomainError as exc:  # stale version (the other writer), a rule not met: nothing written
                log(refused=op.__name__, error=type(exc).__name__)
                continue
            log(**(entry or {"op": "noop"}))
    except BaseException:
        log(error=traceback.format_exc())
        os._exit(3)
    os._exit(0)


def zygote(url, log_dir, actor_id):
    """The warm parent: imports and warms up once, then forks a writer for each 'spawn SEED' line on stdin
    and answers with the child's pid. Children are reaped automatically (SIGCHLD ignored)."""
    from models.documents import warm_up
    from models.schema import bind
    bind(url)
    warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for number, line in enumerate(sys.stdin):
        command = line.split()
        if not command or command[0] != "spawn":
            break
        fd = os.open(os.path.join(log_dir, f"writer-{number:04d}.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                     0o600)
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            run_writer(fd, int(actor_id), int(command[1]))
        os.close(fd)
        print(pid, flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["zygote"]:
        zygote(*sys.argv[2:5])
    sys.exit(0)


# ----- the test ---------------------------------------------------------------------------------------------


from builders import LINE, SECOND_LINE, make_draft_invoice, make_opportunity, make_won_deal  # noqa: E402
from models import (Account, Contact, HistoryEvent, Invoice, InvoiceLine, Lead, Opportunity,  # noqa: E402
                    OpportunityLine, Order, OrderLine, Product, Quote, QuoteLine, SecurityEvent, NumberSequence, db)
from models.money import document_totals  # noqa: E402
from servers import kill_group  # noqa: E402

NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
      "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
DOCUMENTS = [(Opportunity, OpportunityLine), (Quote, QuoteLine), (Order, OrderLine), (Invoice, InvoiceLine)]
MONEY_COLUMNS = {Opportunity: ("net_total", "tax_total", "gross_total", "estimated_revenue", "actual_revenue"),
                 Quote: ("net_total", "tax_total", "gross_total"), Order: ("net_total", "tax_total", "gross_total"),
                 Invoice: ("net_total", "tax_total", "gross_total"), OpportunityLine: ("unit_price",),
                 QuoteLine: ("unit_price",), OrderLine: ("unit_price",), InvoiceLine: ("unit_price",)}


class Zygote:
    """The warm parent process (its own process group: killpg ends it and every writer it forked)."""

    def __init__(self, url, log_dir, actor_id):
        self.log_dir = log_dir
        self.stderr = open(os.path.join(log_dir, "zygote.stderr"), "wb")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "zygote", url, log_dir, str(actor_id)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     start_new_session=True, text=True, cwd=ROOT)
        line = self.proc.stdout.readline().strip()
        assert line == "ready", (line, self.errors())

    def spawn(self, seed):
        self.proc.stdin.write(f"spawn {seed}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        assert line.isdigit(), (line, self.errors())
        return int(line)

    def errors(self):
        self.stderr.flush()
        with open(self.stderr.name, "rb") as fh:
            return fh.read().decode(errors="replace")[-4000:]

    def close(self):
        kill_group(self.proc, first=signal.SIGKILL)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            stream.close()


def kill_and_wait(pid, timeout=10):
    """SIGKILL one writer and wait until it is gone (the zygote reaps it). False when it had already
    ended by itself (a writer error: its log says why, and assert_durable reports it)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.002)
    raise AssertionError(f"writer {pid} survived SIGKILL for {timeout} s")


def read_logs(log_dir):
    """{writer number: [entries]} of every writer; a torn last line (killed mid-write) is dropped."""
    logs = {}
    for name in sorted(os.listdir(log_dir)):
        if not name.startswith("writer-"):
            continue
        entries = []
        with open(os.path.join(log_dir, name)) as fh:
            lines = fh.read().split("\n")
        for index, line in enumerate(lines):
            if not line:
                continue
            try:
                entries.append(json.loads(line))
            except ValueError:
                assert index == len(lines) - 1, f"garbled line in the middle of {name}: {line!r}"
        logs[int(name[7:-6])] = entries
    return logs


# ----- invariants -------------------------------------------------------------------------------------------

def events_by_record():
    counts = {}
    for event in HistoryEvent.select(HistoryEvent.record_type, HistoryEvent.record_id):
        key = (event.record_type, event.record_id)
        counts[key] = counts.get(key, 0) + 1
    return counts


def assert_storage(url):
    """SQLite: the file is sound and money is stored as integers (minor units), never REAL."""
    if not url.startswith("sqlite"):
        return
    assert db.execute_sql("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert db.execute_sql("PRAGMA foreign_key_check").fetchall() == []
    for model, columns in MONEY_COLUMNS.items():
        for column in columns:
            kinds = {row[0] for row in db.execute_sql(
                f'SELECT DISTINCT typeof("{column}") FROM "{model._meta.table_name}"').fetchall()}
            assert kinds <= {"integer", "null"}, (model.__name__, column, kinds)


def assert_money():
    for model, line_model in DOCUMENTS:
        lines = {}
        for line in line_model.select():
            lines.setdefault(line.document_id, []).append(line)
        for document in model.select_without("pdf") if model in (Quote, Invoice) else model.select():
            totals = document_totals(lines.get(document.id, []))
            stored = (document.net_total, document.tax_total, document.gross_total)
            assert stored == (totals.net, totals.tax, totals.gross), (model.__name__, document.id, stored, totals)
            assert document.gross_total == document.net_total + document.tax_total
            assert sum(n for n, _ in totals.by_rate.values()) == totals.net
            assert sum(t for _, t in totals.by_rate.values()) == totals.tax
    line_values = {}
    for model, line_model in DOCUMENTS[1:]:
        for line in line_model.select().order_by(line_model.position, line_model.id):
            line_values.setdefault((model, line.document_id), []).append(
                (line.description, line.quantity, line.unit_price, line.discount_pct, line.tax_rate))
    for order in Order.select():
        assert line_values.get((Order, order.id)) == line_values.get((Quote, order.quote_id)), order.id
    for invoice in Invoice.select_without("pdf"):
        assert line_values.get((Invoice, invoice.id)) == line_values.get((Order, invoice.order_id)), invoice.id


def assert_frozen_invoice_xml(invoice):
    """The Factur-X XML inside the stored PDF states the stored totals; its breakdown adds up to them."""
    from facturx import get_xml_from_pdf
    from lxml import etree
    _, xml = get_xml_from_pdf(bytes(invoice.pdf), check_xsd=False)
    root = etree.fromstring(xml)
    assert root.xpath("//rsm:ExchangedDocument/ram:ID", namespaces=NS)[0].text == invoice.number
    summary = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:"
    amount = lambda path: Decimal(root.xpath(summary + path, namespaces=NS)[0].text)  # noqa: E731
    assert (amount("TaxBasisTotalAmount"), amount("TaxTotalAmount"), amount("GrandTotalAmount")) == \
        (invoice.net_total, invoice.tax_total, invoice.gross_total), invoice.number
    taxes = root.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS)
    assert sum(Decimal(t.findtext("ram:BasisAmount", namespaces=NS)) for t in taxes) == invoice.net_total
    assert sum(Decimal(t.findtext("ram:CalculatedAmount", namespaces=NS)) for t in taxes) == invoice.tax_total


def assert_history():
    """One version bump and one event per committed change (creation: version 1 and a 'create' event,
    except opportunities, created by the lead's 'qualify' event)."""
    counts = events_by_record()
    for model in (Lead, Account, Contact, Product, Opportunity, Quote, Order, Invoice):
        for record in model.select(model.id, model.version):
            events = counts.pop((model.record_type, record.id), 0)
            born = 1 if model is Opportunity else 0
            assert record.version == events + born, (model.__name__, record.id, record.version, events)
    assert counts == {}, f"events about records that do not exist: {counts}"


def assert_numbers():
    issued = list(Invoice.select_without("pdf").where(Invoice.number.is_null(False)).order_by(Invoice.year,
                                                                                              Invoice.sequence))
    years = sorted({i.year for i in issued})
    for year in years:
        mine = [i for i in issued if i.year == year]
        assert [i.sequence for i in mine] == list(range(1, len(mine) + 1)), year
        assert [i.number for i in mine] == [Invoice.format_number(year, n) for n in range(1, len(mine) + 1)]
        last = NumberSequence.get(NumberSequence.name == f"invoice-{year}").last_value
        assert last == len(mine), (year, last, len(mine))
    for sequence in NumberSequence.select().where(NumberSequence.name.startswith("invoice-")):
        assert int(sequence.name[8:]) in years or sequence.last_value == 0
    quotes = list(Quote.select_without("pdf"))
    last_quote = NumberSequence.select(NumberSequence.last_value).where(NumberSequence.name == "quote").scalar() or 0
    assert sorted({q.number for q in quotes}) == list(range(1, last_quote + 1))
    for number in {q.number for q in quotes}:
        revisions = sorted((q.revision, q.status) for q in quotes if q.number == number)
        assert [r for r, _ in revisions] == list(range(1, len(revisions) + 1)), number
        assert all(status == "revised" for _, status in revisions[:-1]), (number, revisions)
    orders = sorted(o.number for o in Order.select(Order.number))
    last_order = NumberSequence.select(NumberSequence.last_value).where(NumberSequence.name == "order").scalar() or 0
    assert orders == list(range(1, last_order + 1))


def assert_frozen_documents():
    issue_events = {e.record_id: e for e in HistoryEvent.select().where(
        (HistoryEvent.record_type == "invoice") & (HistoryEvent.action == "issue"))}
    for invoice in Invoice.select():
        if invoice.status in ("issued", "paid"):
            assert invoice.pdf is not None and hashlib.sha256(invoice.pdf).hexdigest() == invoice.pdf_sha256
            assert (invoice.year, invoice.issue_date, invoice.due_date) != (None, None, None)
            event = issue_events.pop(invoice.id)
            assert event.change_map["pdf_sha256"][1] == invoice.pdf_sha256
            assert event.change_map["number"][1] == invoice.number
            assert_frozen_invoice_xml(invoice)
        else:
            assert invoice.status == "draft"
            assert (invoice.number, invoice.sequence, invoice.year, invoice.pdf, invoice.pdf_sha256) == (None,) * 5
    assert issue_events == {}, "issue events of invoices that are not issued"
    logged = SecurityEvent.select().where(SecurityEvent.kind == "invoice_issued").count()
    assert logged == Invoice.select().where(Invoice.status.in_(["issued", "paid"])).count()
    activations = {e.record_id: e for e in HistoryEvent.select().where(
        (HistoryEvent.record_type == "quote") & (HistoryEvent.action == "activate"))}
    for quote in Quote.select():
        if quote.activated_at is not None:
            assert quote.pdf is not None and hashlib.sha256(quote.pdf).hexdigest() == quote.pdf_sha256
            assert activations.pop(quote.id).change_map["pdf_sha256"][1] == quote.pdf_sha256
            assert quote.status in ("active", "won", "lost", "revised")
        else:
            assert quote.status in ("draft", "lost") and quote.pdf is None and quote.pdf_sha256 is None, quote.id
    assert activations == {}


def assert_no_half_states():
    quotes, orders, invoices = {}, {}, {}
    for quote in Quote.select_without("pdf"):
        quotes.setdefault(quote.opportunity_id, []).append(quote)
    for order in Order.select():
        orders.setdefault(order.opportunity_id, []).append(order)
    for invoice in Invoice.select_without("pdf"):
        invoices.setdefault(invoice.order_id, []).append(invoice)
    for opp in Opportunity.select():
        mine = quotes.get(opp.id, [])
        statuses = sorted(q.status for q in mine)
        live_orders = [o for o in orders.get(opp.id, []) if o.status != "canceled"]
        assert opp.column == opp.board_column(), (opp.id, opp.column, opp.board_column())
        assert statuses.count("active") <= 1 and statuses.count("draft") <= 1, (opp.id, statuses)
        if opp.status == "open":
            assert opp.column == opp.stage and not live_orders and "won" not in statuses, opp.id
            assert opp.close_reason is None and opp.lost_from is None and opp.actual_revenue is None, opp.id
        elif opp.status == "lost":
            assert "active" not in statuses and "draft" not in statuses and opp.close_reason, opp.id
            assert opp.lost_from in ("develop", "propose", "close") and not live_orders
        else:
            won = [q for q in mine if q.status == "won"]
            assert len(won) == 1 and len(live_orders) == 1 and live_orders[0].quote_id == won[0].id, opp.id
            assert opp.actual_revenue == won[0].net_total and opp.actual_close_date and opp.probability == 100
        if opp.lead_id is not None:
            assert Lead.get_by_id(opp.lead_id).status == "qualified"
    for order in Order.select():
        live = [i for i in invoices.get(order.id, []) if i.status != "canceled"]
        assert len(live) <= 1, order.id
        assert (order.status == "fulfilled") == (order.fulfilled_at is not None)
        if any(i.status in ("issued", "paid") for i in live):
            assert order.status == "fulfilled", order.id
    for invoice in Invoice.select_without("pdf").where(Invoice.status == "paid"):
        assert invoice.paid_on is not None and invoice.paid_on >= invoice.issue_date
    for lead in Lead.select().where(Lead.status == "qualified"):
        assert Opportunity.select().where(Opportunity.lead == lead.id).count() == 1, lead.id


def assert_invariants(url):
    assert_storage(url)
    assert_money()
    assert_history()
    assert_numbers()
    assert_frozen_documents()
    assert_no_half_states()


def assert_durable(logs):
    """Everything a writer logged (after its COMMIT) is in the database."""
    committed = 0
    for writer, entries in logs.items():
        for entry in entries:
            if "error" in entry and "refused" not in entry:
                raise AssertionError(f"writer {writer} failed:\n{entry['error']}")
            if entry.get("op") in (None, "noop"):
                continue
            committed += 1
            model = Opportunity if entry["type"] == "opportunity" else Invoice
            record = model.get_by_id(entry["id"])
            assert record.version >= entry["version"], (entry, record.version)
            if record.version == entry["version"]:  # nothing changed it since: it is exactly as logged
                for name in ("column", "net_total", "tax_total", "topic", "probability"):
                    if name in entry:
                        assert str(getattr(record, name)) == str(entry[name]), (entry, name, getattr(record, name))
            if entry["op"] == "issue":
                assert (record.number, record.pdf_sha256) == (entry["number"], entry["sha256"]), entry
                assert record.status in ("issued", "paid")
            elif entry["op"] == "invoice_move":
                assert Invoice.get((Invoice.opportunity == record.id) & (Invoice.number == entry["number"]))
            elif entry["op"] == "paid":
                assert record.status == "paid"
    return committed


def durability_settings(url):
    """What the app's connection really uses (the guarantee stated in the module docstring)."""
    if url.startswith("sqlite"):
        mode = db.execute_sql("PRAGMA journal_mode").fetchone()[0]
        synchronous = db.execute_sql("PRAGMA synchronous").fetchone()[0]
        assert (mode, synchronous) == ("wal", 1), (mode, synchronous)  # 1 = NORMAL
        return f"journal_mode={mode}, synchronous=NORMAL"
    setting = db.execute_sql("SHOW synchronous_commit").fetchone()[0]
    fsync = db.execute_sql("SHOW fsync").fetchone()[0]
    assert setting in ("on", "remote_write", "remote_apply", "local") and fsync == "on", (setting, fsync)
    return f"synchronous_commit={setting}, fsync={fsync}"


def test_writers_killed_with_sigkill_leave_a_consistent_database(database_url, database, seller, tmp_path):
    started = time.monotonic()
    guarantee = durability_settings(database_url)
    for _ in range(OPEN_DEALS):
        make_opportunity(seller, [LINE, SECOND_LINE])
    for _ in range(WON_DEALS):
        make_won_deal(seller, [LINE, SECOND_LINE])
    for _ in range(DRAFT_INVOICES):
        make_draft_invoice(seller)
    assert_invariants(database_url)  # the invariants hold on the builders' world: they are the real ones
    db.close()

    log_dir = str(tmp_path / "writers")
    os.makedirs(log_dir)
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    zygote = Zygote(database_url, log_dir, seller.id)
    kills = 0
    try:
        alive = [zygote.spawn(rng.randrange(10 ** 9)) for _ in range(WRITERS)]
        for _ in range(KILLS):
            time.sleep(rng.uniform(*rng.choice([KILL_SOON, KILL_LATE])))
            victim = rng.choice(alive)
            kills += kill_and_wait(victim)
            alive[alive.index(victim)] = zygote.spawn(rng.randrange(10 ** 9))
        time.sleep(rng.uniform(*KILL_SOON))
        for pid in alive:  # the last ones die the same way
            kills += kill_and_wait(pid)
        assert zygote.proc.poll() is None, zygote.errors()
    finally:
        zygote.close()

    logs = read_logs(log_dir)
    db.obj.close_all()  # check through new connections (SQLite recovers the WAL as it opens)
    db.connect(reuse_if_open=True)
    committed = assert_durable(logs)
    assert_invariants(database_url)
    killed_in = {}
    for entries in logs.values():
        if entries and "begin" in entries[-1]:
            killed_in[entries[-1]["begin"]] = killed_in.get(entries[-1]["begin"], 0) + 1
    mid_op = sum(killed_in.values())
    kinds = {}
    for entries in logs.values():
        for entry in entries:
            if entry.get("op") not in (None, "noop"):
                kind = "skip" if entry["op"] == "move" and entry["column"] == "invoiced" else entry["op"]
                kinds[kind] = kinds.get(kind, 0) + 1
    print(f"\n{database_url.split(':')[0]}: {kills} SIGKILLs ({mid_op} inside an operation: {killed_in}), "
          f"{committed} logged commits {kinds}, {guarantee}, {time.monotonic() - started:.1f} s")
    assert len(logs) == KILLS + WRITERS and kills == KILLS + WRITERS, "a writer ended before it was killed"
    assert committed >= KILLS, "the writers committed too little for the kills to mean anything"
    assert mid_op >= KILLS // 4, "too few kills landed inside an operation"
