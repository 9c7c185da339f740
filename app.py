"""Pipeline CRM: application factory, configuration, CLI commands; `python app.py` runs the app."""
import datetime
import os
import secrets
import sys
import time

import click
from flask import Flask, g, make_response, redirect, request, session, url_for
from werkzeug.routing import IntegerConverter

ROOT = os.path.dirname(os.path.abspath(__file__))
INSTANCE = os.path.join(ROOT, "instance")

PUBLIC_ENDPOINTS = {"auth.login", "static", "health", "favicon"}
# Blueprints that authenticate every request on their own (API tokens, public capture forms): no
# session login is asked for, and their before_request sets g.user (or leaves it None where public).
SELF_AUTHENTICATED = {"api", "public"}
SESSION_RENEW_SECONDS = 3600
EMPTY_STYLE_HASH = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       f"style-src-attr 'unsafe-hashes' {EMPTY_STYLE_HASH}; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = (("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
                    ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY"))


class RecordId(IntegerConverter):
    """`<int:…>` in every route. A number above 2**31 - 1, the largest id the databases hold, would
    overflow the query (a 500): it becomes 0, which no record has, so the answer is the route's own 404
    (JSON under /api/v1). Refusing it in the converter instead would leave the request unrouted."""

    def to_python(self, value):
        number = int(value)
        return number if number <= 2 ** 31 - 1 else 0


def _secret_key(instance_path):
    """The SECRET_KEY kept under instance/, generated once on first start."""
    path = os.path.join(instance_path, "secret_key")
    if os.path.exists(path):
        with open(path) as fh:
            key = fh.read().strip()
        if key:
            return key
    os.makedirs(instance_path, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def load_config(config=None):
    """Defaults, then the environment, then the `config` argument."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("INSTANCE_PATH") or INSTANCE
    settings = {
        "INSTANCE_PATH": instance_path,
        "DATABASE_URL": "sqlite:///" + os.path.join(instance_path, "pipeline.db"),
        "SECRET_KEY": None,
        "CURRENCY": "EUR",
        "HOST": "127.0.0.1",
        "PORT": 5000,
        "BOARD_PAGE_SIZE": 25,
        "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "PERMANENT_SESSION_LIFETIME": datetime.timedelta(days=14),
        "SESSION_REFRESH_EACH_REQUEST": False,
        "TRUSTED_PROXIES": 0,
        "SMTP_URL": "",
        "MAIL_FROM": "",
    }
    for key in ("DATABASE_URL", "SECRET_KEY", "CURRENCY", "HOST", "PORT", "TRUSTED_PROXIES", "SMTP_URL", "MAIL_FROM"):
        if os.environ.get(key):
            settings[key] = os.environ[key]
    if os.environ.get("SESSION_COOKIE_SECURE", "").lower() in ("1", "true", "yes"):
        settings["SESSION_COOKIE_SECURE"] = True
    settings.update(config or {})
    settings["PORT"] = int(settings["PORT"])
    proxies = str(settings["TRUSTED_PROXIES"]).strip()
    if not proxies.isdigit() or int(proxies) > 5:
        raise ValueError(f"TRUSTED_PROXIES must be the number of reverse proxies in front of the app (0 to 5), "
                         f"not {proxies!r}.")
    settings["TRUSTED_PROXIES"] = int(proxies)
    settings["CURRENCY"] = str(settings["CURRENCY"]).strip().upper()
    from models.money import currency_problem
    problem = currency_problem(settings["CURRENCY"])
    if problem:
        raise ValueError(f"CURRENCY: {problem}")
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _secret_key(instance_path)
    return settings


def create_app(config=None):
    """Build the Flask app: config, database binding (and SQLite migrations), blueprints, CLI."""
    from models import db
    from models.base import refresh_statistics
    from models.schema import bind, upgrade
    from views import register
    from models.security import client_ip
    from views.common import csrf, htmx, load_url_records
    from views.security import CachedSessionInterface

    app = Flask(__name__, instance_path=None)
    app.url_map.converters["int"] = RecordId
    app.config.update(load_config(config))
    from models.settings import use_currency
    use_currency(app.config["CURRENCY"])  # documents print the currency the screens print
    from models import mail
    mail.configure(app.config["SMTP_URL"], app.config["MAIL_FROM"])  # a wrong SMTP_URL stops the start
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        os.makedirs(os.path.dirname(url.split(":///", 1)[1]) or ".", exist_ok=True)
    bind(url)
    if url.startswith("sqlite") and not app.config.get("SKIP_MIGRATIONS"):
        upgrade()
        refresh_statistics(force=True)
    elif not url.startswith("sqlite"):
        from models.schema import pending
        waiting = pending()
        if waiting:
            app.logger.warning("database has pending migrations (%s): run `flask --app app db-upgrade`",
                               ", ".join(waiting))

    if app.config["TRUSTED_PROXIES"]:
        # Behind N reverse proxies: the client's address (login limits, web-form limits, security log) is the
        # Nth X-Forwarded-For entry from the right (each proxy appends one), the scheme the outermost proxy's
        # X-Forwarded-Proto (it sets the header once). The host is never taken from a header.
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"], x_proto=1, x_host=0)
    app.session_interface = CachedSessionInterface()
    htmx.init_app(app)
    csrf.init_app(app)
    register(app)

    @app.before_request
    def open_connection_and_require_login():
        db.connect(reuse_if_open=True)
        client_ip.set(request.remote_addr)
        if request.blueprint in SELF_AUTHENTICATED:  # the session cookie means nothing there
            g.user = None
            return None
        from models import User
        g.user = User.signed_in(session.get("uid"), session.get("epoch"))
        if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if htmx:
                resp = make_response("", 401)
                resp.headers["HX-Redirect"] = url_for("auth.login", next=request.path)
                return resp
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if g.user is not None:
            renew_session()
            load_url_records()

    def renew_session():
        """Sliding expiry: a signed-in session lasts PERMANENT_SESSION_LIFETIME from its last use, the
        cookie being re-issued at most once an hour (not re-signed on every request)."""
        now = int(time.time())
        if now - session.get("seen", 0) >= SESSION_RENEW_SECONDS:
            session["seen"] = now

    @app.after_request
    def security_headers(response):
        """A strict Content-Security-Policy (no inline scripts or styles), no framing, no sniffing;
        pages for a logged-in user are never stored by caches."""
        headers = response.headers
        for name, value in SECURITY_HEADERS:  # (not setdefault: it raises and catches a KeyError per miss)
            if name not in headers:
                headers[name] = value
        if g.get("user") is not None and request.endpoint != "static" and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        return response

    @app.teardown_request
    def close_connection(exc):
        if exc is None:
            try:
                refresh_statistics()  # at most hourly (SQLite)
            except Exception:  # statistics are an optimisation: never fail a finished request for them
                app.logger.warning("refreshing SQLite's statistics failed", exc_info=True)
        if not db.is_closed():
            db.close()

    @app.get("/favicon.ico")
    def favicon():
        """Browsers ask for /favicon.ico on every site: the app's icon (not a login redirect)."""
        return redirect(url_for("static", filename="favicon.svg"), 301)

    @app.get("/healthz")
    def health():
        """Liveness probe: the app answers and the database is reachable."""
        db.execute_sql("SELECT 1")
        return {"status": "ok"}

    register_cli(app)
    return app


def register_cli(app):
    """flask --app app db-upgrade | create-user | seed-demo"""

    @app.cli.command("db-upgrade")
    def db_upgrade():
        """Apply pending schema migrations (needed for PostgreSQL; SQLite migrates on start)."""
        from models.schema import upgrade
        applied = upgrade()
        click.echo("applied: " + ", ".join(applied) if applied else "database is up to date")

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--password", required=True)
    @click.option("--name", default=None)
    @click.option("--role", default="seller", type=click.Choice(["seller", "manager", "admin"]))
    @click.option("--team", default=None, help="Team name (created when it does not exist yet).")
    def create_user(email, password, name, role, team):
        """Create a login (without --team the user sees only their own records and unowned ones)."""
        from models import Team, User, ValidationError, db
        from models.base import write_transaction
        with db.connection_context():
            try:
                if team:
                    with write_transaction():
                        Team.get_or_create(name=team.strip()[:80])
                user = User.create_user(email, password, name=name, role=role, team=team.strip()[:80] if team else None)
            except ValidationError as exc:
                for field, message in exc.fields.items():
                    click.echo(f"{field}: {message}", err=True)
                sys.exit(2)
        click.echo(f"created {user.role} {user.email}" + (f" in team {team}" if team else ""))

    @app.cli.command("backup")
    @click.argument("path")
    def backup(path):
        """Copy the SQLite database to PATH while the app runs (PostgreSQL: use pg_dump, see README)."""
        from models import db
        from models.backup import BackupError, backup_sqlite
        try:
            with db.connection_context():
                size = backup_sqlite(path)
        except BackupError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        click.echo(f"backup written to {path} ({size} bytes, integrity ok)")

    @app.cli.command("freeze-documents")
    def freeze_documents():
        """Store the PDF of sent quotes and issued invoices that have none (made before PDFs were frozen)."""
        from models import Invoice, Quote, db
        from models.base import write_transaction
        from models.documents import freeze_after_the_fact
        count = 0
        with db.connection_context():
            for model, statuses in ((Quote, ["active", "won", "lost", "revised"]), (Invoice, ["issued", "paid"])):
                for document in model.select().where(model.status.in_(statuses) & model.pdf_sha256.is_null()):
                    if model is Quote and document.activated_at is None:
                        continue
                    with write_transaction():
                        freeze_after_the_fact(document)
                    count += 1
        click.echo(f"stored {count} document(s)")

    @app.cli.command("seed-demo")
    def seed_demo_command():
        """Fill an empty database with the demo company (does nothing if it has data)."""
        from models import db
        from models.demo import seed_demo
        with db.connection_context():
            created = seed_demo(currency=app.config["CURRENCY"])
        click.echo("demo data created" if created else "database already has data; nothing done")


def main():
    """Create or migrate the database, seed demo data on first start, run the development server."""
    from models import db
    from models.demo import DEMO_LOGINS, seed_demo
    from models.schema import upgrade

    app = create_app()
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        upgrade()
    with db.connection_context():
        seeded = seed_demo(currency=app.config["CURRENCY"])
    host, port = app.config["HOST"], app.config["PORT"]
    print(f"\nPipeline CRM is running at http://{host}:{port}/")
    if seeded:
        print("Demo data was created.")
    print("Demo logins:")
    for email, password, role in DEMO_LOGINS:
        print(f"  {email} / {password}  ({role})")
    print()
    app.run(host=host, port=port, debug=False, threaded=True)


if __name__ == "__main__":
    main()
