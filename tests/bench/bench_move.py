"""Stage-move throughput and latency under gunicorn (2 sync workers) against a bare Flask route.

Run: .venv/bin/python tests/bench/bench_move.py [requests_per_client] [clients] [rounds]
     (BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test to run it on PostgreSQL)
Loopback only; the request count is bounded. Prints req/s of both, the ratio, and move p50/p99.
"""
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlencode

from common import ROOT, PASSWORD, scratch_app

START_VERSION = 4
HERE = os.path.dirname(os.path.abspath(__file__))
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, env, port):
    proc = subprocess.Popen([GUNICORN, "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"] + args,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])


def stop(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)


def run_clients(clients, work):
    latencies, errors = [], []
    lock = threading.Lock()

    def worker(index):
        local, bad = work(index)
        with lock:
            latencies.extend(local)
            errors.extend(bad)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start_time = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start_time
    return len(latencies) / elapsed, latencies, errors


def bare_work(port, count):
    def work(_):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        out, bad = [], []
        for _ in range(count):
            t = time.perf_counter()
            conn.request("GET", "/ping")
            resp = conn.getresponse()
            resp.read()
            out.append((time.perf_counter() - t) * 1000)
            if resp.status != 200:
                bad.append(resp.status)
        conn.close()
        return out, bad
    return work


def session(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    html = resp.read().decode()
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    body = urlencode({"email": "bench@example.com", "password": PASSWORD, "csrf_token": token})
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    resp = conn.getresponse()
    resp.read()
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    conn.request("GET", "/board", headers={"Cookie": cookie})
    resp = conn.getresponse()
    token = re.search(r'name="csrf-token" content="([^"]+)"', resp.read().decode()).group(1)
    if resp.getheader("Set-Cookie"):
        cookie = resp.getheader("Set-Cookie").split(";")[0]
    return conn, cookie, token


class Mover:
    """The move load: client `index` moves its own deals between Develop and Propose. Clients log in
    before any clock starts (a login is a deliberately slow password check, not part of a move), and
    the deals' versions are kept across rounds."""

    def __init__(self, port, deals_per_client, indexes):
        self.port, self.deals_per_client = port, deals_per_client
        self.sessions = {i: session(port) for i in indexes}
        self.state = {deal: ["develop", START_VERSION] for i in indexes for deal in self.deals(i)}

    def deals(self, index):
        return list(range(index * self.deals_per_client + 1, (index + 1) * self.deals_per_client + 1))

    def work(self, count, offset=0):
        def work(index):
            conn, cookie, token = self.sessions[index + offset]
            ids = self.deals(index + offset)
            out, bad = [], []
            for n in range(count):
                deal = ids[n % len(ids)]
                column, version = self.state[deal]
                target = "propose" if column == "develop" else "develop"
                body = urlencode({"record": f"opportunity:{deal}", "to": target, "version": version})
                t = time.perf_counter()
                conn.request("POST", "/board/move", body, {"Content-Type": "application/x-www-form-urlencoded",
                                                           "Cookie": cookie, "X-CSRFToken": token,
                                                           "HX-Request": "true"})
                resp = conn.getresponse()
                resp.read()
                out.append((time.perf_counter() - t) * 1000)
                if resp.status != 200:
                    bad.append(resp.status)
                    continue
                self.state[deal] = [target, version + 1]
            return out, bad
        return work


def prepare(deals, url=None):
    """A scratch database (SQLite, or the PostgreSQL `url`) with `deals` opportunities in Develop."""
    from models import Lead, Opportunity, Product, User, db
    app, user, url = scratch_app(url)
    with db.connection_context():
        actor = User.get_by_id(user.id)
        product = Product.create_product(actor, sku="B-1", name="Bench item", list_price="100")
        for i in range(deals):
            lead = Lead.create_lead(actor, name=f"Bench {i}", company=f"Bench Co {i}", email=f"b{i}@x.example",
                                    budget_amount="1000", purchase_timeframe="this quarter")
            opp = lead.qualify(actor)
            opp.add_line(actor, product=product.id)
            opp.move_to(actor, "propose")
            opp.move_to(actor, "develop")
        assert Opportunity.select().count() == deals
        assert {o.version for o in Opportunity.select()} == {START_VERSION}
    return url


def fresh_postgres(server_url):
    """Recreate a database named pipeline_bench on the server of `server_url` (None: use SQLite)."""
    if not server_url:
        return None
    import psycopg2
    base = server_url.rsplit("/", 1)[0]
    conn = psycopg2.connect(server_url)
    conn.autocommit = True
    conn.cursor().execute("DROP DATABASE IF EXISTS pipeline_bench WITH (FORCE)")
    conn.cursor().execute("CREATE DATABASE pipeline_bench")
    conn.close()
    url = f"{base}/pipeline_bench"
    from models.schema import bind, upgrade
    bind(url)
    upgrade()
    return url


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    deals_per_client = 10
    # one more set of deals than clients: the last set warms the app up (as the bare route is warmed up)
    url = prepare((clients + 1) * deals_per_client, fresh_postgres(os.environ.get("BENCH_DATABASE_URL")))
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench", INSTANCE_PATH=tempfile.mkdtemp())

    bare_port, app_port = free_port(), free_port()
    bare = start(["--chdir", HERE, "bare_wsgi:app"], env, bare_port)
    server = start(["--chdir", ROOT, "app:create_app()"], env, app_port)
    try:
        mover = Mover(app_port, deals_per_client, range(clients + 1))
        bare_work(bare_port, 100)(0)
        mover.work(100, offset=clients)(0)  # warm-up: templates compiled, queries prepared
        results = []
        # rounds alternate between the two servers, so a change in the machine's load hits both
        for _ in range(rounds):
            bare_rps, bare_lat, bare_bad = run_clients(clients, bare_work(bare_port, count))
            move_rps, move_lat, move_bad = run_clients(clients, mover.work(count))
            results.append((move_rps / bare_rps, bare_rps, bare_lat, bare_bad, move_rps, move_lat, move_bad))
    finally:
        stop(bare)
        stop(server)

    print(f"gunicorn 2 workers each, {clients} loopback clients x {count} requests per round, {rounds} rounds "
          f"alternating, database {url.split(':')[0]}")
    for ratio, bare_rps, bare_lat, bare_bad, move_rps, move_lat, move_bad in results:
        move_lat = sorted(move_lat)
        print(f"  bare {bare_rps:6.0f} req/s (p50 {statistics.median(bare_lat):5.2f} ms, errors {len(bare_bad)})   "
              f"move {move_rps:5.0f} req/s (p50 {statistics.median(move_lat):5.2f} ms, "
              f"p99 {move_lat[int(len(move_lat) * 0.99) - 1]:5.2f} ms, errors {len(move_bad)})   -> {ratio * 100:4.1f} %")
    ratio = statistics.median(r[0] for r in results)
    every_move = sorted(x for r in results for x in r[5])
    p99 = every_move[int(len(every_move) * 0.99) - 1]
    failed = [status for r in results for status in r[6]]
    if failed:
        print(f"FAILED MOVES: {len(failed)} (statuses {sorted(set(failed))})")
    print(f"move throughput = {ratio * 100:.0f} % of the bare route (median of {rounds} rounds; target >= 25 %); "
          f"p50 {statistics.median(every_move):.1f} ms, p99 {p99:.1f} ms over all moves (target <= 50 ms)")


if __name__ == "__main__":
    main()
