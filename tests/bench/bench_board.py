"""Board page server time: 100 deals vs 10 000 open deals + 5 000 open leads, against a bare Flask route.

Run: .venv/bin/python tests/bench/bench_board.py
Prints medians, ratios and the number of SQL queries per board page.
"""
import sys

from common import bare_app, bulk_pipeline, login, median_ms, scratch_app


def measure(app, user, deals, leads, repeat):
    from models import db
    from models.base import refresh_statistics
    with db.connection_context():
        bulk_pipeline(user.id, deals, leads)
    refresh_statistics(force=True)  # as the app does after an import and hourly (SQLite's planner statistics)
    client = app.test_client()
    login(client)
    from tests.clients import queries_of
    queries, page = queries_of(lambda: client.get("/board"))
    assert page.status_code == 200
    median, _ = median_ms(lambda: client.get("/board"), repeat=repeat)
    size = len(client.get("/board").data)
    return median, queries, size


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    floor_client = bare_app().test_client()
    floor, _ = median_ms(lambda: floor_client.get("/ping"), repeat=200)
    small_app, small_user, _ = scratch_app()
    small, small_q, small_size = measure(small_app, small_user, 100, 50, repeat)
    big_app, big_user, _ = scratch_app()
    big, big_q, big_size = measure(big_app, big_user, 10000, 5000, repeat)
    print(f"bare Flask route            median {floor:7.2f} ms")
    print(f"board, 100 deals + 50 leads   median {small:7.2f} ms  {small_q} queries  {small_size / 1024:.0f} KiB"
          f"  = {small / floor:5.1f} x bare route")
    print(f"board, 10k deals + 5k leads   median {big:7.2f} ms  {big_q} queries  {big_size / 1024:.0f} KiB"
          f"  = {big / floor:5.1f} x bare route")
    print(f"ratio big / small = {big / small:.2f} (target <= 1.5); queries constant: {big_q == small_q}")


if __name__ == "__main__":
    main()
