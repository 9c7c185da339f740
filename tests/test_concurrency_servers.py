"""Concurrency across servers: two gunicorn instances (2 sync workers each, own ports) on ONE database.

Clients log in on both servers, read the same record's version there, then fire a conflicting pair at
the same moment (threading.Barrier), one request to each server:
  (a) two different moves of the same deal from the same version (plus the same move twice: idempotent),
  (b) two inline edits of the same field from the same version,
  (c) a move against an inline edit,
  (d) a quote action in the panel (revise, lose) against the board move that wins the deal with that quote.
Exactly one request of a conflicting pair succeeds (2xx) and the other is refused with 409 (in (d) 422
when the move finds the quote gone and would need a new one sent); the database
then holds the winner's change, the version went up exactly once and exactly one history event was
written (no lost update). Invoices are issued concurrently through both servers (four clients, every
invoice attempted by each of them; and issue against the board move that issues the same invoice):
numbers are unique and gapless and each invoice is issued once. And two servers started together on a
SQLite file that does not exist yet all boot (the workers migrate it in turn).

Loopback only; bounded: PAIRS pairs per kind; the two servers are shared by the module's tests (one
database per kind, emptied first); every server is a process group ended in `finally`.
Runs on SQLite (a file; writers queued by the file lock) and on PostgreSQL (row locks) when
TEST_DATABASE_URL is set.
"""
import json
import random
import re
import threading
import time

import pytest

from builders import make_closing, make_draft_invoices, make_opportunity, win_inputs, LINE
from clients import DATABASES, PASSWORD, empty_database
from models import HistoryEvent, Invoice, NumberSequence, Opportunity, Quote, User, db
from models.base import today
from models.schema import bind
from servers import HttpSession, Server

PAIRS = 30
SAME_MOVE_PAIRS = 10
STORM_INVOICES = 4
ISSUE_VS_MOVE = 3
DOCUMENT_PAIRS = 3


# ----- fixtures and helpers --------------------------------------------------------------------------

@pytest.fixture(scope="module", params=DATABASES)
def shared(request, tmp_path_factory):
    """One database per module and kind (SQLite file / PostgreSQL, emptied first, as conftest does) with
    its seller, and two gunicorn instances on it for all tests of this module. Tests add their own
    records and check them (and invariants that hold over everything), so they need no empty database."""
    tmp = tmp_path_factory.mktemp(f"servers-{request.param}")
    url = empty_database(request.param, tmp, request)
    with db.connection_context():
        seller = User.create_user("sam@example.com", PASSWORD, "Sam Seller", "seller")
    servers = [Server(url, tmp / f"server-{i}", workers=2) for i in (0, 1)]
    try:
        for server in servers:
            server.start()
        yield url, servers, seller
    finally:
        for server in servers:
            server.stop()
        if not db.is_closed():
            db.close()


@pytest.fixture
def two_servers(shared):
    """The module's servers, with the test process connected to their database; fails the test when a
    server logged a traceback meanwhile."""
    url, servers, _ = shared
    bind(url)  # another module's fixture may have bound the test process elsewhere in between
    db.connect(reuse_if_open=True)
    offsets = [server.log_size() for server in servers]
    try:
        yield servers
        for server, offset in zip(servers, offsets):
            log = server.log_since(offset)
            assert "Traceback" not in log, log[-6000:]
    finally:
        if not db.is_closed():
            db.close()


@pytest.fixture
def seller(shared):
    return User.get_by_id(shared[2].id)


def connect(servers, email="sam@example.com"):
    """One logged-in session per server (each server hands out its own cookie and CSRF token)."""
    for server in servers:
        server.wait_ready()
    return [HttpSession(server.port).login(email, PASSWORD) for server in servers]


def version_via(session, kind, record_id):
    """The record's version as this session's server shows it: on the deal's board card, in the invoice's panel."""
    if kind == "opportunity":
        resp = session.request("GET", f"/board/card/opportunity/{record_id}")
        pattern = rf'data-record="opportunity:{record_id}" data-version="(\d+)"'
    else:
        resp = session.request("GET", f"/invoices/{record_id}")
        pattern = rf'id="version-invoice-{record_id}" name="version" value="(\d+)"'
    assert resp.status == 200, resp
    match = re.search(pattern, resp.body)
    assert match, resp.body[:500]
    return int(match.group(1))


def fire(requests):
    """Send each (session, method, path, data) from its own thread at the same moment; returns
    [(Response, start, end)] in the order given (an exception in place of a Response)."""
    barrier = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def send(index, session, method, path, data):
        barrier.wait(timeout=30)
        start = time.perf_counter()
        try:
            results[index] = (session.request(method, path, data), start, time.perf_counter())
        except BaseException as exc:  # reported by the caller: a thread's exception would vanish
            results[index] = (exc, start, time.perf_counter())

    threads = [threading.Thread(target=send, args=(i, *r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request did not come back within 120 s"
    for result in results:
        assert not isinstance(result[0], BaseException), result
    return results


def overlapped(results):
    """True when the requests were in flight at the same time."""
    return max(start for _, start, _ in results) < min(end for _, _, end in results)


def last_event_id():
    return HistoryEvent.select(HistoryEvent.id).order_by(HistoryEvent.id.desc()).scalar() or 0


def events_since(mark, record_type, record_id):
    return list(HistoryEvent.select().where((HistoryEvent.id > mark) & (HistoryEvent.record_type == record_type)
                                            & (HistoryEvent.record_id == record_id)).order_by(HistoryEvent.id))


def opportunity(pk):
    return Opportunity.get_by_id(pk)


def one_winner(results, context):
    """Exactly one 2xx and one 409; returns the index of the winner."""
    statuses = [r.status for r, _, _ in results]
    assert sorted(statuses) == [200, 409], (context, statuses, [r.body[:400] for r, _, _ in results])
    return statuses.index(200)


def assert_opportunity_history_matches_versions():
    """An opportunity is created at version 1 without an event of its own (the lead's qualify event
    tells), and every committed change bumps its version once and writes one event."""
    for opp in Opportunity.select():
        count = HistoryEvent.select().where((HistoryEvent.record_type == "opportunity")
                                            & (HistoryEvent.record_id == opp.id)).count()
        assert opp.version == 1 + count, (opp.id, opp.version, count)


def assert_versions_match_history(model):
    """Documents are created at version 1 with a 'create' event; each committed change adds one of each."""
    for record in model.select(model.id, model.version):
        count = HistoryEvent.select().where((HistoryEvent.record_type == model.record_type)
                                            & (HistoryEvent.record_id == record.id)).count()
        assert record.version == count, (model.__name__, record.id, record.version, count)


def assert_quote_numbers_gapless():
    numbers = sorted({q.number for q in Quote.select(Quote.number)})
    last = NumberSequence.select(NumberSequence.last_value).where(NumberSequence.name == "quote").scalar() or 0
    assert numbers == list(range(1, last + 1))


def deals(seller, count):
    return [make_opportunity(seller, [LINE]) for _ in range(count)]


def read_versions(sessions, kind, record_id):
    """Both clients read the version from their own server; they see the same one."""
    seen = [version_via(s, kind, record_id) for s in sessions]
    assert seen[0] == seen[1], seen
    return seen[0]


# ----- (a) two moves of one deal ------------------------------------------------------------------------

def test_conflicting_moves_of_one_deal_across_servers(two_servers, seller):
    targets = deals(seller, PAIRS + SAME_MOVE_PAIRS)
    sessions = connect(two_servers)
    together = 0
    for i, deal in enumerate(targets):
        version = read_versions(sessions, "opportunity", deal.id)
        assert version == opportunity(deal.id).version
        mark = last_event_id()
        same = i >= PAIRS
        forms = [{"record": f"opportunity:{deal.id}", "to": "propose", "version": version},
                 {"record": f"opportunity:{deal.id}", "to": "propose" if same else "lost", "close_reason": "price",
                  "version": version}]
        if i % 2:
            forms.reverse()  # each server wins some and loses some
        results = fire([(sessions[k], "POST", "/board/move", forms[k]) for k in (0, 1)])
        together += overlapped(results)
        after = opportunity(deal.id)
        new_events = events_since(mark, "opportunity", deal.id)
        quotes = list(Quote.select().where(Quote.opportunity == deal.id))
        assert after.version == version + 1, (i, after.version, version)
        assert len(new_events) == 1, [(e.action, e.changes) for e in new_events]
        if same:  # the same move twice is idempotent: both answer 200, one changes, one finds it done
            assert [r.status for r, _, _ in results] == [200, 200], results
            assert sorted(("Already in Propose" in r.body) for r, _, _ in results) == [False, True]
            assert (after.column, new_events[0].action, len(quotes)) == ("propose", "move", 1)
            continue
        winner = forms[one_winner(results, (i, forms))]["to"]
        if winner == "propose":
            assert (after.column, after.status, new_events[0].action) == ("propose", "open", "move")
            assert [q.status for q in quotes] == ["draft"]
        else:
            assert (after.column, after.status, after.close_reason) == ("lost", "lost", "price")
            assert new_events[0].action == "lost" and quotes == []
    assert_opportunity_history_matches_versions()
    assert_quote_numbers_gapless()
    assert together > 0, "no pair was ever in flight at the same time"


# ----- (b) two inline edits of one field -------------------------------------------------------------------

def test_conflicting_inline_edits_across_servers(two_servers, seller):
    targets = deals(seller, PAIRS)
    sessions = connect(two_servers)
    together = 0
    for i, deal in enumerate(targets):
        version = read_versions(sessions, "opportunity", deal.id)
        before = opportunity(deal.id)
        mark = last_event_id()
        name, values = (("topic", [f"Topic from A {i}", f"Topic from B {i}"]) if i % 2 == 0
                        else ("probability", ["31", "67"]))
        results = fire([(sessions[k], "POST", f"/opportunities/{deal.id}/fields/{name}",
                         {name: values[k], "version": version}) for k in (0, 1)])
        together += overlapped(results)
        winner = one_winner(results, (i, name))
        after = opportunity(deal.id)
        assert str(getattr(after, name)) == values[winner], (i, getattr(after, name), values)
        assert after.version == version + 1
        new_events = events_since(mark, "opportunity", deal.id)
        assert [e.action for e in new_events] == ["update"]
        assert json.loads(new_events[0].changes)[name] == [
            getattr(before, name) if name == "topic" else before.probability,
            values[winner] if name == "topic" else int(values[winner])]
        assert (after.column, after.topic if name == "probability" else after.probability) == \
            (before.column, before.topic if name == "probability" else before.probability)
        loser = results[1 - winner][0]
        assert "changed by" in loser.body, loser.body[:400]
    assert_opportunity_history_matches_versions()
    assert together > 0, "no pair was ever in flight at the same time"


# ----- (c) a move against an inline edit ---------------------------------------------------------------------

def test_move_against_inline_edit_across_servers(two_servers, seller):
    targets = deals(seller, PAIRS)
    sessions = connect(two_servers)
    together = 0
    for i, deal in enumerate(targets):
        version = read_versions(sessions, "opportunity", deal.id)
        before = opportunity(deal.id)
        mark = last_event_id()
        move = ("POST", "/board/move", {"record": f"opportunity:{deal.id}", "to": "propose", "version": version})
        edit = ("POST", f"/opportunities/{deal.id}/fields/topic", {"topic": f"Edited {i}", "version": version})
        kinds = ["move", "edit"] if i % 2 == 0 else ["edit", "move"]
        plan = {"move": move, "edit": edit}
        results = fire([(sessions[k], *plan[kinds[k]]) for k in (0, 1)])
        together += overlapped(results)
        winner = kinds[one_winner(results, (i, kinds))]
        after = opportunity(deal.id)
        assert after.version == version + 1
        new_events = events_since(mark, "opportunity", deal.id)
        quotes = Quote.select().where(Quote.opportunity == deal.id).count()
        if winner == "move":
            assert (after.column, after.topic, quotes) == ("propose", before.topic, 1)
            assert [e.action for e in new_events] == ["move"]
        else:
            assert (after.column, after.topic, quotes) == ("develop", f"Edited {i}", 0)
            assert [e.action for e in new_events] == ["update"]
    assert_opportunity_history_matches_versions()
    assert_quote_numbers_gapless()
    assert together > 0, "no pair was ever in flight at the same time"


# ----- invoices: numbers under concurrent issues through both servers -----------------------------------------

def test_concurrent_invoice_issues_across_servers_are_gapless(two_servers, seller):
    storm = make_draft_invoices(seller, STORM_INVOICES)
    contested = make_draft_invoices(seller, ISSUE_VS_MOVE)
    sessions = connect(two_servers) + connect(two_servers)  # four clients: two on each server
    versions = {inv.id: read_versions(sessions[:2], "invoice", inv.id) for inv in storm + contested}
    events_before = last_event_id()
    issued_before = Invoice.select().where(Invoice.number.is_null(False)).count()

    # Every client issues every storm invoice, each in its own order, all four at once.
    rng = random.Random(7)
    orders = [rng.sample([inv.id for inv in storm], len(storm)) for _ in sessions]
    answers = {inv.id: [] for inv in storm}
    barrier = threading.Barrier(len(sessions))
    failures = []

    def client(index):
        try:
            barrier.wait(timeout=30)
            for invoice_id in orders[index]:
                resp = sessions[index].request("POST", f"/invoices/{invoice_id}/issue",
                                               {"version": versions[invoice_id]})
                answers[invoice_id].append(resp)
        except BaseException as exc:
            failures.append(repr(exc))
    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(sessions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(t.is_alive() for t in threads) and failures == []
    for invoice_id, responses in answers.items():
        assert [r.status for r in responses] == [200] * len(sessions), (invoice_id, responses)
        issued_here = [r for r in responses if re.search(r"Invoice INV-\d{4}-\d{5} is issued\.", r.body)]
        assert len(issued_here) == 1, (invoice_id, [r.body[-300:] for r in responses])

    # The invoice's issue (invoice panel, server A) against the board move that issues it (server B).
    together = 0
    for i, inv in enumerate(contested):
        opp_version = read_versions(sessions[:2], "opportunity", inv.opportunity_id)
        requests = [("POST", f"/invoices/{inv.id}/issue", {"version": versions[inv.id]}),
                    ("POST", "/board/move", {"record": f"opportunity:{inv.opportunity_id}", "to": "invoiced",
                                             "version": opp_version})]
        if i % 2:
            requests.reverse()
        results = fire([(sessions[k], *requests[k]) for k in (0, 1)])
        together += overlapped(results)
        assert [r.status for r, _, _ in results] == [200, 200], (i, results)
        deal = opportunity(inv.opportunity_id)
        assert (deal.column, deal.version) == ("invoiced", opp_version + 1)

    year = today().year
    issued = list(Invoice.select().where(Invoice.status == "issued").order_by(Invoice.sequence))
    total = issued_before + STORM_INVOICES + ISSUE_VS_MOVE
    assert [i.sequence for i in issued] == list(range(1, total + 1))
    assert [i.number for i in issued] == [f"INV-{year}-{n:05d}" for n in range(1, total + 1)]
    assert len({i.number for i in issued}) == total
    assert NumberSequence.get(NumberSequence.name == f"invoice-{year}").last_value == total
    assert {i.id for i in issued} >= {i.id for i in storm + contested}
    new = HistoryEvent.select().where(HistoryEvent.id > events_before)
    for inv in issued[issued_before:]:
        assert new.where((HistoryEvent.record_type == "invoice") & (HistoryEvent.record_id == inv.id)).count() == 1
        assert (inv.version, inv.pdf is not None) == (2, True)
        deal = opportunity(inv.opportunity_id)
        assert deal.column == "invoiced"
        moves = new.where((HistoryEvent.record_type == "opportunity") & (HistoryEvent.record_id == deal.id))
        assert [(e.action, e.to_stage) for e in moves] == [("move", "invoiced")]
    assert_opportunity_history_matches_versions()
    assert together > 0, "no contested pair was ever in flight at the same time"


# ----- (d) a quote action in the panel against the board move that wins the deal ------------------------------

def test_quote_actions_against_winning_moves_across_servers(two_servers, seller):
    """Revise or lose the active quote on one server while the deal is dragged to Fulfill (won with that
    quote) on the other: one of them happens, the other is refused (409, or 422 when the move finds no active
    quote any more and would need a new one sent); never both, never a 500, nothing overwritten."""
    closings = [make_closing(seller) for _ in range(2 * DOCUMENT_PAIRS)]
    sessions = connect(two_servers)
    together = 0
    for i, deal in enumerate(closings):
        action = "revise" if i < DOCUMENT_PAIRS else "lose"
        quote = deal.quote_in("active")
        opp_version = read_versions(sessions, "opportunity", deal.id)
        requests = [("POST", f"/quotes/{quote.id}/{action}", {"version": quote.version}),
                    ("POST", "/board/move", dict(win_inputs(deal), record=f"opportunity:{deal.id}", to="fulfill",
                                                 version=opp_version))]
        kinds = [action, "win"]
        if i % 2:
            requests.reverse()
            kinds.reverse()
        results = fire([(sessions[k], *requests[k]) for k in (0, 1)])
        together += overlapped(results)
        statuses = dict(zip(kinds, [r.status for r, _, _ in results]))
        after, fresh_quote = opportunity(deal.id), Quote.get_by_id(quote.id)
        revisions = Quote.select().where(Quote.number == quote.number).count()
        if statuses["win"] == 200:
            assert statuses[action] == 409, (i, statuses, [r.body[-400:] for r, _, _ in results])
            assert (after.status, after.column, fresh_quote.status, revisions) == ("won", "fulfill", "won", 1)
        else:
            assert statuses[action] == 200 and statuses["win"] in (409, 422), (i, statuses)
            assert (after.status, after.column, after.version) == ("open", "close", opp_version)
            assert (fresh_quote.status, revisions) == (("revised", 2) if action == "revise" else ("lost", 1))
        assert fresh_quote.version == quote.version + 1
    assert_opportunity_history_matches_versions()
    assert_versions_match_history(Quote)
    assert_quote_numbers_gapless()
    assert together > 0, "no pair was ever in flight at the same time"


# ----- start-up: servers starting together on a database that does not exist yet --------------------------------

def test_servers_starting_together_on_a_fresh_sqlite_file_all_boot(tmp_path):
    """SQLite migrates at start: four workers of two servers starting at once on a new file must take
    turns (each migration applied once), not fail to boot on each other's half-applied migrations."""
    url = f"sqlite:///{tmp_path / 'fresh' / 'new.db'}"
    servers = [Server(url, tmp_path / f"server-{i}", workers=2) for i in (0, 1)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
            resp = HttpSession(server.port).get("/login")
            assert resp.status == 200, resp
    finally:
        for server in servers:
            server.stop()
    logs = "".join(server.log_tail(20000) for server in servers)
    assert "Traceback" not in logs, logs[-6000:]
    bind(url)
    with db.connection_context():
        names = [row[0] for row in db.execute_sql("SELECT name FROM schema_migration ORDER BY name").fetchall()]
        assert len(names) == len(set(names)) > 0 and db.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"
