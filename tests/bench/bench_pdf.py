"""Quote PDF render time against a bare WeasyPrint render, and a frozen PDF's download server time.

Run: .venv/bin/python tests/bench/bench_pdf.py [repeat]
Prints medians and ratios: a warm 1-page quote and a 3-page quote against a bare WeasyPrint render of a
one-line HTML page in the same process (targets <= 3x and <= 6x), and the Flask test-client time of
downloading a frozen (activated) quote (target <= 5 ms) and of an unchanged draft downloaded again.
For reference it also renders the quotes' line tables alone as unstyled HTML tables, and 28 one-word
paragraphs: what WeasyPrint needs for those boxes before any letterhead, totals or styling. Last, it activates quotes and issues
invoices while another process (a second gunicorn worker) saves small changes in a loop, once as the
app does it and once with the renders inside an enclosing write transaction (as before), and prints
how long those saves took: a document is rendered before the write lock is taken, so other users'
saves should not wait for it.
"""
import statistics
import subprocess
import sys
import tempfile
import time

from common import ROOT, bare_app, login, median_ms, scratch_app

THREE_PAGES = 38

COMPANY = {"company_name": "Falkenberg IT-Systeme GmbH", "address": "Gutenbergstraße 14\n70176 Stuttgart\nGermany",
           "vat_id": "DE287654321", "email": "info@falkenberg-it.de", "phone": "+49 711 2250480",
           "bank_details": "Commerzbank AG\nIBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX"}


def line(i):
    return {"description": f"Implementation work package {i + 1}: configuration, data migration and tests",
            "quantity": str(i % 4 + 1), "unit_price": f"{120 + 7 * i}.50", "discount_pct": "5" if i % 5 == 0 else "0",
            "tax_rate": "19" if i % 3 else "7"}


def plain_table(rows):
    """The lines of a quote as a bare HTML table (7 cells a row, no stylesheet; a fixed table layout
    is no cheaper here, as its equal columns wrap the descriptions onto more lines)."""
    body = "".join(f"<tr><td>{i + 1}</td><td>{item['description']}</td><td>{item['quantity']}</td><td>h</td>"
                   f"<td>{item['unit_price']}</td><td>{item['tax_rate']} %</td><td>1,234.50</td></tr>"
                   for i, item in enumerate(line(i) for i in range(rows)))
    return f"<table>{body}</table>"


def page_count(pdf):
    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(pdf)
        fh.flush()
        info = subprocess.run(["pdfinfo", fh.name], capture_output=True, text=True).stdout
    return next(int(row.split()[-1]) for row in info.splitlines() if row.startswith("Pages:"))


def quote_with(actor, lines):
    """A draft quote with `lines` lines on an account with a postal address."""
    from models import Account, Quote
    from tests.builders import make_proposed
    opportunity = make_proposed(actor, lines=[line(i) for i in range(lines)])
    Account.update(street="Hafenstraße 3", postal_code="20457", city="Hamburg", vat_id="DE811907980").where(
        Account.id == opportunity.account_id).execute()
    return Quote.get_by_id(opportunity.quote_in("draft").id)


def cpu_median_ms(fn, repeat):
    """Median CPU time of this process (robust when other processes load the machine)."""
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append((time.process_time() - start) * 1000)
    return statistics.median(samples)


def _saver(url, ready, stop, results):
    """Another gunicorn worker, as a process: saves a small change in a loop and reports how long each took."""
    sys.path.insert(0, ROOT)
    from app import create_app
    from models import NumberSequence, db
    from models.base import write_transaction
    create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tempfile.mkdtemp()})
    samples = []
    with db.connection_context():
        ready.set()
        while not stop.is_set():
            start = time.perf_counter()
            with write_transaction():
                NumberSequence.next_value("bench-saves")
            samples.append((time.perf_counter() - start) * 1000)
            time.sleep(0.002)
    results.put(samples)


def saves_while_freezing(actor, url, count, under_lock):
    """Activate `count` quotes and issue `count` invoices while another process saves a small change in a
    loop; under_lock=True renders inside an enclosing write transaction, as documents were rendered before
    2026-11-30. Returns (the activations' / issues' median time, the saves' p50, p99 and longest) in ms."""
    import multiprocessing
    from models import Invoice, Quote
    from models.base import write_transaction
    from tests.builders import make_draft_invoice
    quotes = [quote_with(actor, 4) for _ in range(count)]
    invoices = [make_draft_invoice(actor, lines=[line(i) for i in range(4)]).id for _ in range(count)]
    spawn = multiprocessing.get_context("spawn")
    ready, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
    saver = spawn.Process(target=_saver, args=(url, ready, stop, results))
    saver.start()
    ready.wait(60)
    freezes = []
    try:
        for quote, invoice in zip(quotes, invoices):
            for action in (lambda: Quote.get_by_id(quote.id).activate(actor),
                           lambda: Invoice.get_by_id(invoice).issue(actor)):
                start = time.perf_counter()
                if under_lock:
                    with write_transaction():
                        action()
                else:
                    action()
                freezes.append((time.perf_counter() - start) * 1000)
    finally:
        stop.set()
        saves = sorted(results.get(timeout=60))
        saver.join()
    return statistics.median(freezes), saves[len(saves) // 2], saves[int(len(saves) * 0.99)], saves[-1]


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    app, user, url_of_db = scratch_app()
    from models import Settings, User, db
    from models.documents import render_quote_pdf, url_fetcher, warm_up
    with db.connection_context():
        settings = Settings.load()
        for name, value in COMPANY.items():
            setattr(settings, name, value)
        settings.save()
        actor = User.get_by_id(user.id)
        one_page = quote_with(actor, 4)
        three_pages = quote_with(actor, THREE_PAGES)
        frozen = quote_with(actor, 4)
        frozen.activate(actor)
        warm_up()

        import weasyprint
        fetcher = url_fetcher()
        bare = lambda: weasyprint.HTML(string="<p>Hello</p>", url_fetcher=fetcher).write_pdf()  # noqa: E731
        small_render = lambda: render_quote_pdf(one_page, draft=False)  # noqa: E731
        big_render = lambda: render_quote_pdf(three_pages, draft=False)  # noqa: E731
        floor, _ = median_ms(bare, repeat=repeat * 2)
        small, _ = median_ms(small_render, repeat=repeat)
        big, _ = median_ms(big_render, repeat=max(5, repeat // 2))
        floor_cpu = cpu_median_ms(bare, repeat * 2)
        small_cpu = cpu_median_ms(small_render, repeat)
        big_cpu = cpu_median_ms(big_render, max(5, repeat // 2))
        # What WeasyPrint itself needs for the quotes' line tables alone, unstyled: the floor any
        # template of these documents stands on
        tables = [(f"unstyled {rows}-row table only", lambda rows=rows: weasyprint.HTML(
                      string=plain_table(rows), url_fetcher=fetcher).write_pdf()) for rows in (4, THREE_PAGES)]
        # What each box costs: a 1-page quote has about 110 elements, its 4 lines alone 32 cells
        paragraphs = "".join(f"<p>w{i}</p>" for i in range(28))
        tables.append(("28 one-word paragraphs", lambda: weasyprint.HTML(string=paragraphs,
                                                                         url_fetcher=fetcher).write_pdf()))
        references = [(label, median_ms(fn, repeat=max(5, repeat // 2))[0]) for label, fn in tables]
        pages_small, pages_big = page_count(small_render()), page_count(big_render())
        waits = [(label, saves_while_freezing(actor, url_of_db, max(3, repeat // 2), under_lock))
                 for label, under_lock in (("rendered before the lock (now)", False),
                                           ("rendered under the lock (before)", True))]

    client = app.test_client()
    login(client)
    url = f"/quotes/{frozen.id}.pdf"
    first = client.get(url)
    assert first.status_code == 200 and first.headers["Content-Type"] == "application/pdf"
    download, _ = median_ms(lambda: client.get(url), repeat=repeat * 10)
    draft_url = f"/quotes/{one_page.id}.pdf"
    assert client.get(draft_url).status_code == 200
    draft_again, _ = median_ms(lambda: client.get(draft_url), repeat=repeat * 2)
    bare_flask = bare_app().test_client()
    route, _ = median_ms(lambda: bare_flask.get("/ping"), repeat=repeat * 10)

    rows = [("bare WeasyPrint render, one-line page", floor, floor_cpu, None),
            (f"quote, {pages_small} page, 4 lines", small, small_cpu, 3),
            (f"quote, {pages_big} pages, {THREE_PAGES} lines", big, big_cpu, 6)]
    for label, wall, cpu, target in rows:
        ratio = f"  = {wall / floor:5.1f} x wall, {cpu / floor_cpu:5.1f} x cpu (target <= {target})" if target else ""
        print(f"{label:40} median {wall:8.2f} ms wall {cpu:8.2f} ms cpu{ratio}")
    for label, wall in references:
        print(f"{'reference: ' + label:40} median {wall:8.2f} ms wall = {wall / floor:5.1f} x "
              "(WeasyPrint's own cost of these boxes alone: no letterhead, totals or styling)")
    for label, (freeze, p50, p99, longest) in waits:
        print(f"activation / issue of a 4-line document, {label}: median {freeze:.1f} ms; another process's "
              f"saves meanwhile p50 {p50:.2f} ms, p99 {p99:.1f} ms, longest {longest:.1f} ms = "
              f"{longest / freeze:.2f} x an activation / issue")
    print(f"{'frozen quote download, test client':40} median {download:8.2f} ms (target <= 5 ms), "
          f"{len(first.data) // 1024} KiB; bare Flask route {route:.2f} ms = {download / route:.1f} x")
    print(f"{'draft quote downloaded again, unchanged':40} median {draft_again:8.2f} ms = {draft_again / small:.2f} x "
          "its render (the source is made and hashed, the PDF kept from the last download)")


if __name__ == "__main__":
    main()
