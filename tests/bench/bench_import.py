"""Import benchmark: a generated CSV of leads (100 000 rows by default) through the model-level chunk processor.

    .venv/bin/python tests/bench/bench_import.py [--rows 100000] [--chunk 1000] [--database-url URL] [--xlsx]

--xlsx writes the same rows to an Excel workbook and imports that: the upload request converts its first
sheet to CSV (models/xlsx.py), and the time of that request is printed on its own.

Prints rows/s, the slowest chunk (what one htmx poll costs), and peak memory: tracemalloc's peak of Python
allocations during the run (a second run on a fresh database, as tracing slows Python down) and the
process's ru_maxrss, each with its ratio to the file size. Memory must stay bounded: the file is streamed
by byte offset, one chunk of rows at a time, so the peak should not grow with the file.
"""
import argparse
import csv
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc

from common import ROOT  # noqa: F401  (puts the project on sys.path)


def write_csv(path, rows):
    """Leads with the usual columns; every 50th row invalid, every 100th a duplicate email of an earlier row."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["Vorname", "Nachname", "Firma", "E-Mail", "Telefon", "Budget", "Zeitrahmen", "Notizen"])
        for i in range(rows):
            email = f"lead{i - 7 if i % 100 == 98 else i}@example.com" if i % 50 != 49 else f"broken-{i}"
            writer.writerow([f"Vorname{i}", f"Müller {i}", f"Firma {i // 3} GmbH", email, f"+49 30 {i:07d}",
                             f"{(i % 900) * 10 + 100},50", "this quarter" if i % 2 else "", f"Imported row {i}"])


def write_xlsx(csv_path, path):
    from openpyxl import Workbook
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    with open(csv_path, encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter=";"):
            sheet.append(row)
    book.save(path)


def run(url, path, directory, chunk, trace):
    from models import HistoryEvent, ImportJob, Lead, User, db
    from models.schema import bind, upgrade
    bind(url)
    upgrade()
    with db.connection_context():
        user = User.get_or_none(User.email == "bench@example.com") or \
            User.create_user("bench@example.com", "pipeline-load-test-7", "Bench User", "seller")
        os.makedirs(directory, exist_ok=True)
        upload = os.path.join(directory, "upload.part")
        shutil.copyfile(path, upload)
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        job = ImportJob.create_from_upload(user, "lead", upload, "bench-leads" + os.path.splitext(path)[1], directory)
        uploaded = time.perf_counter() - started
        job.set_mapping("lead", job.mapping)
        job.start(user, "skip", "valid")
        slowest = 0.0
        steps = 0
        while job.status == "running":
            t0 = time.perf_counter()
            job.step(directory, chunk_rows=chunk, seconds=3600)
            slowest = max(slowest, time.perf_counter() - t0)
            steps += 1
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else None
        if trace:
            tracemalloc.stop()
        counts = (job.created_count, job.updated_count, job.skipped_count, job.invalid_count)
        stored = (Lead.select().count(), HistoryEvent.select().where(HistoryEvent.record_type == "lead").count())
    return {"elapsed": elapsed, "uploaded": uploaded, "slowest": slowest, "steps": steps, "peak": peak, "counts": counts,
            "stored": stored, "rows": job.rows_read}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--database-url", default=None, help="default: a scratch SQLite file")
    parser.add_argument("--xlsx", action="store_true", help="import the rows from an XLSX workbook")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="pipeline-import-bench-")
    path = os.path.join(tmp, "leads.csv")
    write_csv(path, args.rows)
    if args.xlsx:
        write_xlsx(path, os.path.join(tmp, "leads.xlsx"))
        path = os.path.join(tmp, "leads.xlsx")
    size = os.path.getsize(path)
    print(f"file: {args.rows:,} rows, {'XLSX' if args.xlsx else 'CSV'} {size / 1e6:.1f} MB, chunk {args.chunk} rows")
    import models.imports  # noqa: F401  (imported before the baseline is taken)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    urls = []
    for label in ("timing", "memory"):
        url = args.database_url or f"sqlite:///{tmp}/{label}.db"
        if args.database_url and label == "memory":
            from models import MODELS, db
            with db.connection_context():
                db.execute_sql("TRUNCATE " + ", ".join(f'"{m._meta.table_name}"' for m in MODELS)
                               + " RESTART IDENTITY CASCADE")
        urls.append(url)
        result = run(url, path, os.path.join(tmp, f"imports-{label}"), args.chunk, trace=label == "memory")
        created, updated, skipped, invalid = result["counts"]
        if label == "timing":
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            print(f"database: {url.split(':', 1)[0]}")
            print(f"imported {created:,}, updated {updated:,}, skipped {skipped:,}, invalid {invalid:,} "
                  f"(stored: {result['stored'][0]:,} leads, {result['stored'][1]:,} history events)")
            print(f"time: {result['elapsed']:.1f} s -> {result['rows'] / result['elapsed']:,.0f} rows/s; "
                  f"upload request (checks{', sheet to CSV' if args.xlsx else ''}, preview rows) "
                  f"{result['uploaded'] * 1000:.0f} ms; "
                  f"{result['steps']} chunks, slowest chunk {result['slowest'] * 1000:.0f} ms")
            print(f"ru_maxrss: {rss / 1e6:.1f} MB (before the import {rss_before / 1e6:.1f} MB, growth "
                  f"{(rss - rss_before) / 1e6:.1f} MB) = {rss / size:.2f} x the file, growth {(rss - rss_before) / size:.2f} x"
                  + (" — includes SQLite's page cache (cache_size 64 MB per connection)" if url.startswith("sqlite")
                     else ""))
        else:
            peak = result["peak"]
            print(f"tracemalloc peak during the import: {peak / 1e6:.1f} MB = {peak / size:.3f} x the file size "
                  f"({result['elapsed']:.1f} s with tracing)")
            bounded = peak < max(size / 2, 16e6)
            print("memory bounded (the peak follows the chunk, not the file): "
                  + ("yes" if bounded else "NO — check the streaming"))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
