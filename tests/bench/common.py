"""Shared helpers for the benchmark scripts: a scratch database, bulk data, timing, a bare floor app."""
import datetime
import os
import random
import re
import statistics
import sys
import tempfile
import time
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PASSWORD = "pipeline-load-test-7"


def scratch_app(url=None):
    """A fresh app on a scratch SQLite file (or `url`), with one user to log in as."""
    from app import create_app
    from models import User, db
    tmp = tempfile.mkdtemp(prefix="pipeline-bench-")
    url = url or f"sqlite:///{tmp}/bench.db"
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tmp})
    with db.connection_context():
        user = User.get_or_none(User.email == "bench@example.com") or \
            User.create_user("bench@example.com", PASSWORD, "Bench User", "seller")
    return app, user, url


def login(client):
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    client.post("/login", data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token})
    html = client.get("/board").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def bulk_pipeline(owner_id, deals, leads, seed=1):
    """Insert `deals` open opportunities spread over develop/propose/close and `leads` open leads (bulk SQL)."""
    from models import Account, Lead, Opportunity, db
    rng = random.Random(seed)
    today = datetime.date.today()
    now = datetime.datetime.now().replace(microsecond=0)
    with db.atomic():
        accounts = []
        for i in range(0, max(1, deals // 10), 500):
            rows = [{"name": f"Account {j}", "owner": owner_id, "created_at": now, "updated_at": now}
                    for j in range(i, min(i + 500, max(1, deals // 10)))]
            Account.insert_many(rows).execute()
        accounts = [a.id for a in Account.select(Account.id)]
        stages = ["develop", "propose", "close"]
        for i in range(0, deals, 500):
            rows = []
            for j in range(i, min(i + 500, deals)):
                stage = stages[j % 3]
                rows.append({"topic": f"Deal {j}", "account": rng.choice(accounts), "stage": stage, "column": stage,
                             "status": "open", "probability": {"develop": 20, "propose": 50, "close": 80}[stage],
                             "revenue_mode": "entered",
                             "estimated_revenue": Decimal(rng.randint(500, 90000)) + Decimal("0.50"),
                             "estimated_close_date": today + datetime.timedelta(days=rng.randint(-20, 200)),
                             "owner": owner_id, "stage_entered_at": now, "created_at": now, "updated_at": now})
            Opportunity.insert_many(rows).execute()
        for i in range(0, leads, 500):
            rows = [{"name": f"Lead {j}", "company": f"Company {j}", "email": f"lead{j}@example.com",
                     "budget_amount": Decimal(rng.randint(100, 50000)), "owner": owner_id, "status": "open",
                     "stage_entered_at": now, "created_at": now, "updated_at": now}
                    for j in range(i, min(i + 500, leads))]
            Lead.insert_many(rows).execute()


def median_ms(fn, repeat=30, warmup=5):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), samples


def bare_app():
    """The floor: a bare Flask route returning a short string."""
    from flask import Flask
    bare = Flask("bare")

    @bare.get("/ping")
    def ping():
        return "pong"
    return bare
