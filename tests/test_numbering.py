"""Gapless invoice numbers under concurrency: rolled-back allocations give their number back (DESIGN.md §2)."""
import multiprocessing
import threading
import time

import pytest

from builders import make_draft_invoices
from models import HistoryEvent, Invoice, NumberSequence, User, db
from models.base import today

WORKERS = 4
PER_WORKER = 6

ISSUE = "issue"
ROLLBACK_AFTER_ISSUE = "issue, roll back, issue again"
ROLLBACK_AFTER_NUMBER = "allocate a number, roll back, issue"
ABANDON = "issue, roll back, leave as draft"


class Abort(Exception):
    """Raised inside a transaction to roll it back after a number was allocated."""


def plan_for(invoice_ids):
    """What each worker does with its invoices: every kind of rollback, and one invoice left as a draft."""
    kinds = [ROLLBACK_AFTER_ISSUE, ROLLBACK_AFTER_NUMBER, ISSUE]
    plan = [(invoice_id, kinds[i % len(kinds)]) for i, invoice_id in enumerate(invoice_ids)]
    plan[-1] = (plan[-1][0], ABANDON)
    return plan


def _rolled_back(step):
    try:
        with db.atomic():
            step()
            time.sleep(0.005)
            raise Abort
    except Abort:
        pass


def run_plan(actor_id, plan):
    """Issue the planned invoices on this thread's/process's own connection; returns the numbers seen."""
    actor = User.get_by_id(actor_id)
    sequence = f"invoice-{today().year}"
    seen = []
    for invoice_id, kind in plan:
        if kind in (ROLLBACK_AFTER_ISSUE, ABANDON):
            _rolled_back(lambda: Invoice.get_by_id(invoice_id).issue(actor))
        elif kind == ROLLBACK_AFTER_NUMBER:
            _rolled_back(lambda: NumberSequence.next_value(sequence))
        if kind != ABANDON:
            assert Invoice.get_by_id(invoice_id).issue(actor) is True
            seen.append(Invoice.get_by_id(invoice_id).sequence)
    return seen


def process_worker(url, actor_id, plan, barrier):
    """Entry point of a spawned process: bind the same database file, wait for the others, run the plan."""
    from models.schema import bind
    bind(url)
    db.connect()
    try:
        barrier.wait(timeout=60)
        run_plan(actor_id, plan)
    finally:
        db.close()


def assert_gapless(invoices, plans):
    abandoned = {invoice_id for plan in plans for invoice_id, kind in plan if kind == ABANDON}
    issued = list(Invoice.select().where(Invoice.status == "issued").order_by(Invoice.sequence))
    expected = len(invoices) - len(abandoned)
    year = today().year
    assert [i.sequence for i in issued] == list(range(1, expected + 1))
    assert [i.number for i in issued] == [f"INV-{year}-{n:05d}" for n in range(1, expected + 1)]
    assert {i.id for i in issued} == {i.id for i in invoices} - abandoned
    for invoice in Invoice.select().where(Invoice.id.in_(list(abandoned))):
        assert (invoice.status, invoice.number, invoice.sequence) == ("draft", None, None)
    assert NumberSequence.get(NumberSequence.name == f"invoice-{year}").last_value == expected
    issue_events = HistoryEvent.select().where((HistoryEvent.record_type == "invoice")
                                               & (HistoryEvent.action == "issue")).count()
    assert issue_events == expected


def split(invoices):
    ids = [i.id for i in invoices]
    return [plan_for(ids[w::WORKERS]) for w in range(WORKERS)]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_gapless_numbers_with_concurrent_threads_on_postgresql(postgres_url, database, seller):
    invoices = make_draft_invoices(seller, WORKERS * PER_WORKER)
    plans = split(invoices)
    barrier = threading.Barrier(WORKERS)
    errors, seen = [], []

    def worker(plan):
        db.connect(reuse_if_open=True)
        try:
            barrier.wait(timeout=30)
            seen.extend(run_plan(seller.id, plan))
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(repr(exc))
        finally:
            db.close()

    threads = [threading.Thread(target=worker, args=(plan,)) for plan in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert sorted(seen) == list(range(1, len(seen) + 1))
    assert_gapless(invoices, plans)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gapless_numbers_with_concurrent_processes_on_sqlite(database_url, database, seller):
    invoices = make_draft_invoices(seller, WORKERS * PER_WORKER)
    plans = split(invoices)
    db.close()
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    processes = [context.Process(target=process_worker, args=(database_url, seller.id, plan, barrier))
                 for plan in plans]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    for process in processes:
        if process.is_alive():
            process.kill()
    assert [p.exitcode for p in processes] == [0] * WORKERS
    db.connect(reuse_if_open=True)
    assert_gapless(invoices, plans)


def test_rolled_back_allocation_gives_the_number_back(database, seller):
    (invoice,) = make_draft_invoices(seller, 1)
    sequence = f"invoice-{today().year}"
    _rolled_back(lambda: NumberSequence.next_value(sequence))
    _rolled_back(lambda: NumberSequence.next_value(sequence))
    invoice.issue(seller)
    assert Invoice.get_by_id(invoice.id).number == f"INV-{today().year}-00001"
