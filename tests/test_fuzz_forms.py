"""Hostile input on every form-accepting (POST) route: never a 500, nothing written when refused, echoes escaped.

The routes come from the app's URL map. Each POST route is matched with a target record in the state the
route acts on (built through the model methods, tests/builders.py) and the user allowed to act on it; its
real field names and values come from the form that posts there (the page is fetched and its forms parsed)
plus the model's field list. Hypothesis then posts mutated forms: real names and random ones, unicode,
1 MB strings, script and attribute injection, NaN / Infinity / -0 / 1e999 / huge and negative numbers, bad
dates, NUL bytes, empty and missing fields, duplicated fields, fake and hostile uploads (logos, import files).
Each route also gets a few fixed forms: a 1 MB value, every field duplicated with an injection, and a NUL byte
after each real value (PostgreSQL refuses NUL in text: a value that reaches the database with one is a 500).

A POST route this file does not know how to reach (no entry in ROUTES, an unknown URL argument, no form
posting there) fails the test with a message saying what to add, so a new route cannot escape it.
FUZZ_FORMS_SCALE=5 multiplies the examples per route for a deeper local run.
"""
import collections
import importlib
import io
import json
import os
import re
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from werkzeug.datastructures import MultiDict

from builders import (LINE, SECOND_LINE, make_closing, make_draft_invoice, make_lead, make_opportunity, make_proposed,
                      make_won_deal, tag)
from clients import DATABASES, PASSWORD, HtmxClient, empty_database
from models import MODELS, Account, Activity, Contact, LoginFailure, Product, Quote, Settings, Team, User, db, mail

SCALE = float(os.environ.get("FUZZ_FORMS_SCALE", "1"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ----- hostile values ---------------------------------------------------------------------------------
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '" hx-get="/logout'
INJECTIONS = (SCRIPT, ATTRIBUTE)
MB = 1 << 20
BIG = ((SCRIPT + ATTRIBUTE) * (MB // len(SCRIPT + ATTRIBUTE) + 1))[:MB]
# Over 500 kB a form field is refused by Werkzeug (413) before the app sees it; 400 kB reach the app.
BIG_VALUES = (BIG, "9" * MB, "ä" * (MB // 2), BIG[:400_000], "ä" * 200_000, "7" * 400_000)
ATOMS = [
    "", " ", "0", "-0", "-0.00", "1", "-1", "-5", "+5", " 42 ", "0.005", "0,5", "1.000,50", "12,3,4", "1_000", "0x1F",
    "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1e999", "-1e999", "1e-999", "1E+12", "9" * 40,
    str(2 ** 63), str(-2 ** 63 - 1), str(2 ** 64), "١٢٣", "１２３", "true", "false", "on", "yes", "None", "null",
    "2026-02-30", "2026-13-01", "2026-00-10", "0000-00-00", "9999-12-31", "1900-01-01", "2026-02-28T25:00", "20260228",
    "2026-W05-1", "\x00", "a\x00b", "x@example.com\x00", "\r\n", "\t", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "Ω≈ç√∫", "\u202e", "\ufeff",
    "\u00a0", "lead:1", "lead:-1", "opportunity:0", "opportunity:99999999999", "quote:1", "develop", "lost", "fulfill",
    "invoiced",
    "qualify", "admin", "manager", SCRIPT, ATTRIBUTE, ATTRIBUTE + SCRIPT, "javascript:alert(1)", "{{7*7}}", "${7*7}",
    "%s%s%s", "'; DROP TABLE lead; --", "../../etc/passwd", "//evil.example", "/\\evil.example", "[]", "{}",
    "a" * 201, "b" * 5001, "c" * 20001,
]
SMALL_VALUES = st.one_of(
    st.sampled_from(ATOMS),
    st.text(max_size=30),
    st.integers().map(str),
    st.floats().map(repr),
    st.decimals().map(str),
    st.dates().map(lambda d: d.isoformat()),
    st.tuples(st.sampled_from(ATOMS), st.text(max_size=8), st.sampled_from(INJECTIONS)).map("".join),
)
SNIPPETS = ["\x00", SCRIPT, ATTRIBUTE, "\u202e", "\r\n", "\t", " ", "ä", "'", "\\", "%00", "0" * 30, "-", "e5"]
VALUES = st.one_of(SMALL_VALUES, st.integers(0, 40).flatmap(
    lambda n: st.sampled_from(BIG_VALUES) if n == 0 else SMALL_VALUES))
# Names a form never has, and names of model columns and method parameters a view might pass on blindly.
SPECIAL_NAMES = ["csrf_token", "version", "id", "owner", "owner_id", "status", "stage", "column", "record", "to",
                 "panel", "dialog_fields", "actor", "target", "self", "expected_version", "inputs", "data", "values",
                 "kwargs", "role", "active", "team", "password", "email", "logo", "remove_logo", "next", "line_id",
                 "document", "number", "pdf", "pdf_sha256", "session_epoch", "password_hash", "__class__", "name[]",
                 "x" * 300, "", "\x00", "ä"]
CURRENT_URLS = st.one_of(
    st.none(),
    st.sampled_from(["http://localhost/board", "http://localhost/board?old=1&owner=me", "http://localhost/leads/1",
                     "http://localhost/", "http://localhost/board?owner=999999999999999&close_from=2026-02-30"]),
    st.tuples(SMALL_VALUES, SMALL_VALUES, SMALL_VALUES).map(
        lambda v: "http://localhost/board?" + urlencode({"q": v[0], "owner": v[1], "close_from": v[2]})),
)


def _png():
    """A real 1x1 PNG."""
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


PNG = _png()
NO_FILE = (b"", "", "application/octet-stream")  # what a browser sends when no file is chosen
LOGO_BYTES = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=200).map(lambda b: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b),
    st.binary(max_size=200).map(lambda b: b"\xff\xd8\xff\xe0" + b),
    st.sampled_from([
        PNG, PNG[:16], b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"", PNG + b"\x00" * (512 * 1024),
        b"GIF89a\x01\x00\x01\x00",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)"><text>x</text></a></svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><svg>&b;</svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><body xmlns="http://www.w3.org/1999/xhtml">'
        b'<script>alert(1)</script></body></foreignObject></svg>',
        b"<svg", b"<html><body>not an image</body></html>", b"\xef\xbb\xbf  <svg/>", b"<svg>\x00</svg>",
    ]),
)
FILENAMES = st.one_of(st.sampled_from(["logo.png", "logo.svg", "logo.jpg", SCRIPT + ".png", "x" * 300 + ".png",
                                       "../../etc/passwd", "ä.png", "noextension"]),
                      st.text(st.characters(min_codepoint=32, blacklist_characters='"\\'), min_size=1, max_size=20))
LOGO_FILES = st.tuples(LOGO_BYTES, FILENAMES, st.sampled_from(["image/png", "image/svg+xml", "image/jpeg", "text/html",
                                                                "application/octet-stream"]))
CSV = b"name,email,company\nNia Import,nia.import@example.com,Import GmbH\nOla Import,ola@example.com,\n"
IMPORT_BYTES = st.one_of(
    st.binary(max_size=300),
    st.lists(st.lists(SMALL_VALUES, max_size=5), max_size=5).map(
        lambda rows: "\n".join(",".join(row) for row in rows).encode("utf-8")),
    st.sampled_from([
        CSV, b"", b"name\n", b"name,email\n", ("name,email\n" + SCRIPT + ',"' + ATTRIBUTE + '"\n').encode(),
        b"name,email\nx\x00y,a@b.de\n", "\ufeffname;email\n\u00e4;\u00e4@b.de\n".encode(),
        "name,email\nx,y\n".encode("utf-16"),
        b"PK\x03\x04" + b"\x00" * 100, b"BEGIN:VCARD\nVERSION:3.0\nFN:" + SCRIPT.encode() + b"\nEND:VCARD\n",
        b'"unterminated,quote\n', b"a," * 5000 + b"\n", b"name,email\n" + b"x,y@example.com\n" * 5000,
        "name,email\n\u00e9,\xe9@x.de\n".encode("latin-1"), b"\xff\xfe\x00\x00", b"\r\r\r\n\n",
    ]),
)
IMPORT_FILES = st.tuples(IMPORT_BYTES, st.one_of(st.sampled_from(["leads.csv", "people.xlsx", "cards.vcf", "x.tsv",
                                                                  SCRIPT + ".csv"]), FILENAMES),
                         st.sampled_from(["text/csv", "text/vcard", "application/octet-stream",
                                          "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]))
# What a file input sends: per input name, real uploads ("keep") and hostile ones.
UPLOADS = {"logo": ([NO_FILE, NO_FILE, (PNG, "logo.png", "image/png")], LOGO_FILES),
           "file": ([NO_FILE, (CSV, "leads.csv", "text/csv"), (CSV, "leads.csv", "text/csv")], IMPORT_FILES)}
OTHER_UPLOADS = ([NO_FILE], st.one_of(LOGO_FILES, IMPORT_FILES))


class Live:
    """A value known only when the request is sent (the record's current version)."""

    def __repr__(self):
        return "<current version>"


class Fresh:
    """A value unique to each request (an email, a SKU, a team name that must not exist yet)."""

    def __init__(self, pattern):
        self.pattern = pattern

    def __repr__(self):
        return f"<fresh {self.pattern}>"

    def value(self):
        return self.pattern.format(tag())


VERSION = Live()
FILE = object()  # a file input: what it sends is drawn from UPLOADS

# ----- which record, in which state, which user: per route --------------------------------------------
SELLER, MANAGER, ADMIN, PROFILE, LOGOUT, ANON, API = "seller", "manager", "admin", "profile", "logout", "anon", "api"
BOARD_STATES = ("lead", "lead_disqualified", "opp_develop", "opp_propose", "opp_close", "opp_won", "opp_lost")
ROUTES = {
    "board.move": [(s, SELLER) for s in BOARD_STATES],
    "activities.create": [("lead", SELLER), ("opp_develop", SELLER)],
    "activities.done": [("task", SELLER)],
    "leads.create": [(None, SELLER)],
    "accounts.create": [(None, SELLER)],
    "contacts.create": [(None, SELLER)],
    "products.create": [(None, SELLER)],
    "products.set_active": [("product", SELLER)],
    "quotes.activate": [("quote_draft", SELLER)],
    "quotes.win": [("quote_active", SELLER)],
    "quotes.revise": [("quote_active", SELLER)],
    "quotes.lose": [("quote_active", SELLER)],
    "orders.fulfil": [("order_open", SELLER)],
    "orders.cancel": [("order_open", SELLER)],
    "orders.create_invoice": [("order_open", SELLER)],
    "invoices.issue": [("invoice_draft", SELLER)],
    "invoices.mark_paid": [("invoice_issued", SELLER)],
    "invoices.cancel": [("invoice_draft", SELLER), ("invoice_issued", SELLER)],
    "invoices.email": [("invoice_issued", SELLER)],
    "quotes.email": [("quote_active", SELLER)],
    "invoices.send_reminders": [(None, SELLER)],
    "admin.create_user": [(None, ADMIN)],
    "admin.create_team": [(None, ADMIN)],
    "admin.update_user": [("victim", ADMIN)],
    "admin.reset_password": [("victim", ADMIN)],
    "auth.login": [(None, ANON)],
    "auth.logout": [(None, LOGOUT)],
    "auth.profile": [("profile", PROFILE)],
    "settings.save": [("settings", MANAGER)],
    "settings.remove_logo": [("settings_logo", MANAGER)],
    "imports.upload": [(None, SELLER)],
    "imports.mapping": [("import_uploaded", SELLER)],
    "imports.start": [("import_mapped", SELLER)],
    "imports.step": [("import_running", SELLER)],
    "imports.cancel": [("import_mapped", SELLER), ("import_running", SELLER)],
    "auth.create_token": [(None, PROFILE)],
    "auth.revoke_token": [("api_token", PROFILE)],
    "capture.create": [(None, ADMIN)],
    "capture.update": [("capture_form", ADMIN)],
    "public.submit": [("capture_form", ANON)],
}
# Blueprints whose POST routes take no forms, and why: each of their routes only gets hostile forms posted
# (with and without credentials) and must refuse them with a 4xx, writing nothing.
NOT_FORMS = {"api": "the JSON API: bodies are JSON (a form is a 415), requests authenticate with a bearer token"}
ARG_STATES = {"lead_id": "lead", "opportunity_id": "opp_develop", "quote_id": "quote_draft", "order_id": "order_open",
              "invoice_id": "invoice_draft", "account_id": "account", "contact_id": "contact", "product_id": "product"}
# Inline field edits (<blueprint>.field_save, one case per field) and the line editor, by blueprint.
FIELD_STATES = {"leads": "lead", "opportunities": "opp_develop", ("opportunities", "WON_FIELDS"): "opp_won",
                "accounts": "account", "contacts": "contact", "quotes": "quote_draft", "invoices": "invoice_draft",
                "products": "product"}
LINE_VIEWS = ("line_add", "line_update", "line_remove", "line_move")
LINE_STATES = {"opportunities": "opp_develop", "quotes": "quote_draft", "invoices": "invoice_draft"}
# Where the form of a route without a target record is.
PAGES = {"leads.create": "/board", "accounts.create": "/accounts/new", "contacts.create": "/contacts/new",
         "products.create": "/products/new", "admin.create_user": "/admin/users", "admin.create_team": "/admin/users",
         "auth.login": "/login", "auth.logout": "/board", "auth.profile": "/profile", "capture.create": "/admin/forms",
         "auth.create_token": "/profile", "imports.upload": "/imports", "invoices.send_reminders": "/invoices?status=overdue"}
# Pages of a state's record for the routes that act on it (the record's detail page when not named here).
STATE_PAGES = {("public.submit", "capture_form"): "/f/{record.key}"}
DETAIL_PAGES = {"lead": "/leads/{}", "opportunity": "/opportunities/{}", "quote": "/quotes/{}", "order": "/orders/{}",
                "invoice": "/invoices/{}", "account": "/accounts/{}", "contact": "/contacts/{}",
                "product": "/products/{}"}
URL_RECORDS = {"lead_id": "Lead", "opportunity_id": "Opportunity", "quote_id": "Quote", "order_id": "Order",
               "invoice_id": "Invoice", "account_id": "Account", "contact_id": "Contact", "product_id": "Product",
               "activity_id": "Activity", "user_id": "User", "form_id": "CaptureForm",
               "job_id": "ImportJob"}
# Query arguments a route reads besides its form (the page to go back to after logging in).
QUERIES = {"auth.login": "next"}
NEXT_PAGES = ["/board", "/leads?status=all", "//evil.example", "/\\evil.example", "https://evil.example/",
              "javascript:alert(1)", "/" + SCRIPT, "http:/evil.example", "\\\\evil.example", "/\t/evil.example"]
# Real values worth sending that the page does not offer (a login that works, a password that is accepted).
LINE_VALUES = {"description": ["Extra work"], "quantity": ["2"], "unit_price": ["99.50"]}
CANDIDATES = {"auth.login": {"email": ["lin@example.com"], "password": [PASSWORD]},
              "auth.profile": {"current_password": [PASSWORD], "password": ["another-fine-pass-2"]},
              "admin.reset_password": {"password": ["a-fine-password-1"]},
              "admin.create_user": {"email": [Fresh("new.{}@example.com")], "name": ["New User"],
                                    "password": ["a-fine-password-1"]},
              "admin.create_team": {"name": [Fresh("Team {}")]},
              "leads.create": {"name": ["Nia New"], "company": [Fresh("New {} GmbH")],
                               "email": [Fresh("nia.{}@example.com")], "budget_amount": ["5000"]},
              "accounts.create": {"name": [Fresh("Account {}")], "email": ["office@example.com"]},
              "contacts.create": {"name": ["Carl Contact"], "email": ["carl@example.com"]},
              "products.create": {"sku": [Fresh("SKU-{}")], "name": ["Gadget"], "list_price": ["12.50"]},
              "activities.create": {"subject": ["Called them"], "due_date": ["2030-01-31"]},
              "capture.create": {"name": [Fresh("Contact form {}")], "thank_you": ["Thanks!"]},
              "opportunities.line_add": LINE_VALUES, "quotes.line_add": LINE_VALUES, "invoices.line_add": LINE_VALUES}
# Tables a refused login writes to on purpose (the failure counter and the security log).
LOGIN_LOGS = {"LoginFailure", "SecurityEvent"}
# Known bugs whose inputs are left out of the fuzzing until fixed (so it keeps finding new problems), each
# pinned by a strict xfail test at the end of this file. None at the moment.
PENDING_NAMES = {}
# Records whose builds render PDFs (~0.7 s each): rebuilt at most this many times per route and database.
MAX_BUILDS = 2


@dataclass(frozen=True)
class Case:
    endpoint: str
    rule: str
    state: str = None
    role: str = SELLER
    field: str = None
    problem: str = None
    not_form: bool = False

    @property
    def id(self):
        parts = [self.endpoint] + [p for p in (self.field, self.state) if p]
        return "-".join(parts)

    @property
    def examples(self):
        if self.not_form:
            base = 3
        elif self.field:
            base = 3
        elif self.state in ("quote_active", "order_open", "invoice_issued") or self.endpoint in (
                "quotes.activate", "invoices.issue", "auth.logout"):
            base = 5
        else:
            base = 8
        return max(1, int(base * SCALE))


def _app_rules():
    """(endpoint, rule, blueprint import name) of every POST route of the app, as create_app builds it."""
    from app import create_app
    folder = tempfile.mkdtemp(prefix="fuzz-forms-routes-")
    try:
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/routes.db", "SKIP_MIGRATIONS": True,
                          "SECRET_KEY": "collect", "INSTANCE_PATH": folder, "TESTING": True})
        rules = [(r.endpoint, r.rule, app.blueprints[r.endpoint.split(".")[0]].import_name
                  if "." in r.endpoint else None)
                 for r in app.url_map.iter_rules() if "POST" in r.methods]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(rules)


def _field_lists(import_name):
    """{list name: [field names]} of the inline-editable Field lists a view module declares."""
    from views.inline import Field
    module = importlib.import_module(import_name)
    return {name: [f.name for f in value] for name, value in vars(module).items()
            if isinstance(value, list) and value and all(isinstance(f, Field) for f in value)}


def _cases():
    cases = []
    for endpoint, rule, import_name in _app_rules():
        blueprint, _, view = endpoint.partition(".")
        if blueprint in NOT_FORMS:
            args = re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule)
            states = [ARG_STATES[a] for a in args if a in ARG_STATES]
            cases.append(Case(endpoint, rule, states[0] if states else None, API, not_form=True))
        elif view == "field_save":
            lists = _field_lists(import_name)
            if not lists:
                cases.append(Case(endpoint, rule, problem=f"{import_name} declares no list of inline Fields"))
            for list_name, names in lists.items():
                state = FIELD_STATES.get((blueprint, list_name)) or FIELD_STATES.get(blueprint)
                for name in names:
                    cases.append(Case(endpoint, rule, state, SELLER, name, None if state else
                                      f"no target state for the inline fields of {blueprint}: add it to FIELD_STATES"))
        elif view in LINE_VIEWS:
            state = LINE_STATES.get(blueprint)
            cases.append(Case(endpoint, rule, state, SELLER, problem=None if state else
                              f"no target state for the line editor of {blueprint}: add it to LINE_STATES"))
        elif endpoint in ROUTES:
            cases += [Case(endpoint, rule, state, role) for state, role in ROUTES[endpoint]]
        else:
            cases.append(Case(endpoint, rule, problem=(
                f"POST {rule} ({endpoint}) has no fuzz target: add it to ROUTES in tests/test_fuzz_forms.py with the "
                "record state it acts on and the role allowed to act")))
    return cases


CASES = _cases()


# ----- forms on a page ---------------------------------------------------------------------------------
class FormScan(HTMLParser):
    """The controls of a page and what they post to (form, form= attribute, hx-post, hx-include, hx-vals)."""

    CONTROLS = ("input", "select", "textarea", "button")

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.forms, self.controls, self.ids, self.openers = [], [], {}, []
        self._open, self._select, self._textarea, self._option = [], None, None, None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = {k: v if v is not None else "" for k, v in attrs}
        node = {"tag": tag, "attrs": a, "controls": [], "options": [], "text": "", "owner": None}
        if a.get("id"):
            self.ids[a["id"]] = node
        if tag == "a" and "data-action" in a and a.get("href"):
            self.openers.append(a["href"])  # a link that opens an action's form (?action=…)
        if tag == "form":
            self.forms.append(node)
            self._open.append(node)
            return
        if tag == "option" and self._select is not None:
            if "value" in a:
                self._select["options"].append(a["value"])
            else:
                self._option = node
            return
        if tag in self.CONTROLS or "hx-post" in a:
            if self._open and not a.get("form"):
                node["owner"] = self._open[-1]
                self._open[-1]["controls"].append(node)
            self.controls.append(node)
            if tag == "select":
                self._select = node
            elif tag == "textarea":
                self._textarea = node

    def handle_endtag(self, tag):
        if tag == "form" and self._open:
            self._open.pop()
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "option" and self._option is not None:
            if self._select is not None:
                self._select["options"].append(self._option["text"].strip())
            self._option = None

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea["text"] += data
        if self._option is not None:
            self._option["text"] += data

    def _included(self, selector):
        found = []
        for part in (selector or "").split(","):
            part = part.strip()
            match = re.fullmatch(r"\[form=['\"]?([^'\"\]]+)['\"]?\]", part)
            if part.startswith("#") and part[1:] in self.ids:
                found.append(self.ids[part[1:]])
            elif match:
                found += [c for c in self.controls if c["attrs"].get("form") == match.group(1)]
        return found

    def _of_form(self, form_id):
        if not form_id:
            return []
        form = self.ids.get(form_id)
        return (form["controls"] if form else []) + [c for c in self.controls if c["attrs"].get("form") == form_id]

    def posting_to(self, path):
        """(is there a form or control posting to `path`, {name: [values the page offers]})."""
        def same(url):
            return bool(url) and urlsplit(url).path == path
        controls, extra, found = [], {}, False
        for form in self.forms:
            a = form["attrs"]
            if same(a.get("action")) or same(a.get("hx-post")):
                found = True
                controls += form["controls"] + self._of_form(a.get("id")) + self._included(a.get("hx-include"))
        for control in self.controls:
            a = control["attrs"]
            if same(a.get("hx-post")) or same(a.get("formaction")):
                found = True
                controls.append(control)
                if a.get("form"):
                    controls += self._of_form(a["form"])
                elif control["owner"] is not None:
                    controls += control["owner"]["controls"]
                controls += self._included(a.get("hx-include"))
                if a.get("hx-vals"):
                    for name, value in json.loads(a["hx-vals"]).items():
                        extra.setdefault(name, []).append(str(value))
        fields = {}
        for control in controls:
            a = control["attrs"]
            name = a.get("name")
            if not name:
                continue
            if a.get("type", "").lower() == "file":
                values = [FILE]
            elif control["tag"] == "select":
                values = control["options"] or [""]
            elif control["tag"] == "textarea":
                values = [control["text"].lstrip("\n")]
            else:
                values = [a.get("value", "")]
            bucket = fields.setdefault(name, [])
            bucket += [v for v in values if v not in bucket]
        for name, values in extra.items():
            bucket = fields.setdefault(name, [])
            bucket += [v for v in values if v not in bucket]
        return found, fields


# ----- the world the routes act on ---------------------------------------------------------------------
def _fresh(record):
    model = type(record)
    return model.get_or_none(model.id == record.id)


def _open_in(column):
    return lambda w, r: r.status == "open" and r.column == column and r.owner_id == w.user(SELLER).id


def _two_lines(w, document):
    rows = document.line_rows()
    for line in (LINE, SECOND_LINE)[len(rows):]:
        document.add_line(w.user(SELLER), **line)


def _disqualified_lead(w):
    lead = make_lead(w.user(SELLER))
    lead.disqualify(w.user(SELLER), reason="no longer interested", note="Fuzz target")
    return lead


def _lost_opportunity(w):
    opportunity = make_opportunity(w.user(SELLER), (LINE,))
    opportunity.move_to(w.user(SELLER), "lost", close_reason="price")
    return opportunity


def _quote_of(opportunity, status):
    return Quote.get((Quote.opportunity == opportunity.id) & (Quote.status == status))


def _issued_invoice(w):
    invoice = make_draft_invoice(w.user(SELLER))
    invoice.issue(w.user(SELLER))
    return _fresh(invoice)


def _free_order(w, order):
    """An open order whose draft invoice was made by a fuzz example: cancel the draft, the order is free again."""
    invoice = order.invoice
    if order.status == "open" and invoice is not None and invoice.status == "draft":
        invoice.cancel(w.user(SELLER), reason="Fuzz reset")


def _task(w):
    opportunity = make_opportunity(w.user(SELLER))
    return Activity.add(w.user(SELLER), opportunity, kind="task", subject="Call back", due_date="2030-01-02")


def _logo(w, settings_row):
    settings_row.save_changes(w.user(MANAGER), {}, logo=PNG)


def _capture_form(w):
    from models.capture import FIELDS, CaptureForm
    return CaptureForm.create_form(w.user(ADMIN), name=f"Fuzz form {tag()}", thank_you="Thanks!", source="web form",
                                   fields=list(FIELDS), required=["name", "email"], owner=str(w.user(SELLER).id))


def _import_job(w, status):
    """An import of a small CSV of leads, uploaded (then mapped, then running) through the model."""
    from models.imports import ImportJob
    directory = os.path.join(w.app.config["INSTANCE_PATH"], "imports")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"fuzz-{tag()}.part")
    with open(path, "wb") as fh:
        fh.write(CSV)
    job = ImportJob.create_from_upload(w.user(SELLER), "lead", path, "leads.csv", directory)
    if status in ("mapped", "running"):
        job.set_mapping("lead", job.mapping)
        job = _fresh(job)
    if status == "running":
        job.start(w.user(SELLER), "skip", "valid")
    return job


def _api_token(w):
    from models import ApiToken
    return ApiToken.issue(w.user(PROFILE), f"Fuzz token {tag()}")[0]


@dataclass
class State:
    build: object
    ok: object = None
    repair: object = None
    page: str = None
    restore: tuple = ()  # columns put back after every example (settings, a password): other routes rely on them
    shared: bool = False  # its build renders PDFs: shared by the routes, rebuilt at most MAX_BUILDS times per route

    def fine(self, world, record):
        return self.ok is None or bool(self.ok(world, record))


STATES = {
    "lead": State(lambda w: make_lead(w.user(SELLER)),
                  lambda w, r: r.status == "open" and r.owner_id == w.user(SELLER).id),
    "lead_disqualified": State(_disqualified_lead, lambda w, r: r.status == "disqualified"),
    "opp_develop": State(lambda w: make_opportunity(w.user(SELLER), (LINE, SECOND_LINE)),
                         lambda w, r: _open_in("develop")(w, r) and len(r.line_rows()) >= 2, _two_lines),
    "opp_propose": State(lambda w: make_proposed(w.user(SELLER), (LINE, SECOND_LINE)), _open_in("propose")),
    "opp_close": State(lambda w: make_closing(w.user(SELLER)), _open_in("close"), shared=True),
    "opp_won": State(lambda w: make_won_deal(w.user(SELLER)),
                     lambda w, r: r.status == "won" and r.column == "fulfill" and r.owner_id == w.user(SELLER).id,
                     shared=True),
    "opp_lost": State(_lost_opportunity, lambda w, r: r.status == "lost" and r.owner_id == w.user(SELLER).id),
    "quote_draft": State(lambda w: _quote_of(make_proposed(w.user(SELLER), (LINE, SECOND_LINE)), "draft"),
                         lambda w, r: r.status == "draft" and len(r.line_rows()) >= 2, _two_lines),
    "quote_active": State(lambda w: _quote_of(make_closing(w.user(SELLER)), "active"),
                          lambda w, r: r.status == "active", shared=True),
    "order_open": State(lambda w: make_won_deal(w.user(SELLER)).order,
                        lambda w, r: r.status == "open" and r.invoice is None, _free_order, shared=True),
    "invoice_draft": State(lambda w: make_draft_invoice(w.user(SELLER), (LINE, SECOND_LINE)),
                           lambda w, r: r.status == "draft" and len(r.line_rows()) >= 2, _two_lines, shared=True),
    "invoice_issued": State(_issued_invoice, lambda w, r: r.status == "issued", shared=True),
    "task": State(_task, lambda w, r: not r.done, page="/opportunities/{record_id}"),
    "account": State(lambda w: Account.create_account(w.user(SELLER), name=f"Fuzz account {tag()}"),
                     lambda w, r: r.owner_id == w.user(SELLER).id),
    "contact": State(lambda w: Contact.create_contact(w.user(SELLER), name=f"Fuzz contact {tag()}"),
                     lambda w, r: r.owner_id == w.user(SELLER).id),
    "product": State(lambda w: Product.create_product(w.user(SELLER), sku=f"FZ-{tag()}", name="Fuzz product",
                                                      unit="piece", list_price="10", tax_rate="19")),
    "victim": State(lambda w: w.user("victim"), page="/admin/users"),
    "settings": State(lambda w: Settings.load(), page="/settings",
                      restore=tuple(n for n in Settings._meta.fields if n != "id")),
    "settings_logo": State(lambda w: _logo(w, Settings.load()) or Settings.load(), lambda w, r: r.logo is not None,
                           _logo, page="/settings"),
    "profile": State(lambda w: w.user(PROFILE), page="/profile", restore=("password_hash",)),
    "capture_form": State(_capture_form, lambda w, r: r.active, page="/admin/forms/{record.id}"),
    "api_token": State(_api_token, lambda w, r: r.revoked_at is None, page="/profile"),
    "import_uploaded": State(lambda w: _import_job(w, "uploaded"), lambda w, r: r.status in ("uploaded", "mapped"),
                             page="/imports/{record.id}"),
    "import_mapped": State(lambda w: _import_job(w, "mapped"), lambda w, r: r.status == "mapped",
                           page="/imports/{record.id}"),
    "import_running": State(lambda w: _import_job(w, "running"), lambda w, r: r.status == "running",
                            page="/imports/{record.id}"),
}
LOGINS = {SELLER: ("sam@example.com", "Sam Seller", "seller", "North"),
          MANAGER: ("mia@example.com", "Mia Manager", "manager", "North"),
          ADMIN: ("ada@example.com", "Ada Admin", "admin", None),
          PROFILE: ("pat@example.com", "Pat Profile", "seller", None),
          LOGOUT: ("lou@example.com", "Lou Logout", "seller", None),
          "victim": ("vic@example.com", "Vic Victim", "seller", "South"),
          "login": ("lin@example.com", "Lin Login", "seller", None)}


class World:
    """One app and database for the whole module: the users, their logged-in clients and the target records."""

    def __init__(self, app, database):
        self.app, self.database = app, database
        self.users, self.clients, self.records, self.forms, self.builds = {}, {}, {}, {}, {}
        self.tables = [m._meta.table_name for m in MODELS]
        with db.connection_context():
            ada = User.create_user(LOGINS[ADMIN][0], PASSWORD, LOGINS[ADMIN][1], "admin")
            teams = {name: Team.create_team(ada, name) for name in ("North", "South")}
            self.users[ADMIN] = ada
            for role, (email, name, kind, team) in LOGINS.items():
                if role != ADMIN:
                    self.users[role] = User.create_user(email, PASSWORD, name, kind, team=teams.get(team))
        for role in (SELLER, MANAGER, ADMIN, PROFILE, LOGOUT):
            self.clients[role] = self.login(role)
        from models import ApiToken
        with db.connection_context():
            self.api_token = ApiToken.issue(self.user(SELLER), "Fuzz API token")[1]
        self.users[API] = self.users[SELLER]
        self.clients[API] = HtmxClient(app.test_client())  # no session: the API authenticates each request
        anonymous = HtmxClient(app.test_client())
        anonymous.client.environ_base["REMOTE_ADDR"] = "10.66.0.1"  # its failed logins throttle no one else
        anonymous.refresh_token("/login")
        self.clients[ANON] = anonymous

    def user(self, role):
        return self.users[role]

    def login(self, role):
        client = HtmxClient(self.app.test_client())
        resp = client.login(LOGINS[role][0])
        assert resp.status_code == 302, f"{role} cannot log in: {resp.status_code}"
        return client

    def target(self, case):
        """The case's record in the state the route acts on: reused while it still is, repaired or rebuilt."""
        if case.state is None:
            return None
        state = STATES[case.state]
        key = case.state if state.shared else case  # a cheap record per route: its history stays short
        with db.connection_context():
            record = self.records.get(key)
            record = _fresh(record) if record is not None else None
            if record is not None and not state.fine(self, record) and state.repair is not None:
                state.repair(self, record)
                record = _fresh(record)
            budget_left = not state.shared or self.builds.get(case, 0) < MAX_BUILDS
            if record is None or (not state.fine(self, record) and budget_left):
                self.builds[case] = self.builds.get(case, 0) + 1
                record = _fresh(state.build(self))
                assert state.fine(self, record), f"{case.state}: a fresh target is not in its state"
            self.records[key] = record
        if not case.not_form and (case, record.id) not in self.forms:  # read the form while in its state
            self.fields(case, record, _url(case, record, "down"))
        return record

    def page(self, case, record, path):
        """The page showing the form that posts to `path`."""
        if case.field:
            return path + "/edit"
        if case.endpoint in PAGES:
            return PAGES[case.endpoint]
        return _view_page(case, record)

    def fields(self, case, record, path):
        """{name: [values]} of the form that posts to `path`, read from the page that shows it (cached per record)."""
        key = (case, record.id if record is not None else None)
        if case.not_form:
            self.forms.setdefault(key, ({}, _other_names(case, record)))
        if key not in self.forms:
            source = self.page(case, record, path)
            pages, found = [source], False
            while pages and not found:
                page = pages.pop(0)
                resp = self.clients[case.role].get(page)
                assert resp.status_code == 200, f"{case.id}: GET {page} answered {resp.status_code}"
                scan = FormScan(resp.get_data(as_text=True))
                found, fields = scan.posting_to(path)
                if page == source:
                    pages += scan.openers
            if not found:
                pytest.fail(f"{case.id}: no form on {source} posts to {path}; tell the fuzz test where the form "
                            "of this route is (PAGES or the state's page)")
            fields.pop("csrf_token", None)
            for name, values in CANDIDATES.get(case.endpoint, {}).items():
                fields[name] = values + [v for v in fields.get(name, []) if v not in values]
            if record is not None and "version" in type(record)._meta.fields:
                fields["version"] = [VERSION]
            self.forms[key] = (fields, [n for n in _other_names(case, record)
                                        if n not in PENDING_NAMES.get(case.endpoint, ())])
        return self.forms[key]

    def counts(self):
        sql = "SELECT " + ", ".join(f'(SELECT COUNT(*) FROM "{t}")' for t in self.tables)
        row = db.execute_sql(sql).fetchone()
        return {m.__name__: n for m, n in zip(MODELS, row)}

    def rows(self, record):
        """The stored rows a refused request must leave alone: the record, its deal and lead, its lines."""
        if record is None:
            return {}
        found = {}
        todo = [(type(record), record.id)]
        for name, model in (("opportunity_id", "Opportunity"), ("lead_id", "Lead"), ("order_id", "Order")):
            if getattr(record, name, None):
                todo.append((_model(model), getattr(record, name)))
        for model, pk in todo:
            rows = _raw_rows(model, "id", pk)
            found[(model.__name__, pk)] = rows[0] if rows else None
        line_model = getattr(record, "line_model", None)
        if line_model is not None:
            found["lines"] = _raw_rows(line_model, line_model.document.column_name, record.id)
        return found

    def restore(self, case, record, before):
        """Put back the columns other routes rely on (company settings, a password) after an example."""
        columns = STATES[case.state].restore if case.state else ()
        if not columns:
            return
        model = type(record)
        stored, now = before[(model.__name__, record.id)], _raw_rows(model, "id", record.id)[0]
        fields = [model._meta.fields[name] for name in columns]
        changed = {f: stored[f.column_name] for f in fields if now[f.column_name] != stored[f.column_name]}
        if changed:
            model.update(changed).where(model.id == record.id).execute()

    def after(self, case):
        """Keep the sessions the next examples need."""
        client = self.clients[case.role]
        if case.role == ANON:
            client.refresh_token("/login")
        elif case.role == PROFILE:
            client.refresh_token("/profile")
        elif case.role == LOGOUT:
            if client.get("/profile").status_code != 200:
                self.clients[LOGOUT] = self.login(LOGOUT)
            else:
                client.refresh_token("/board")


def _view_page(case, record):
    """Where the record is shown (its detail page, or the page of its state)."""
    state = STATES.get(case.state)
    page = STATE_PAGES.get((case.endpoint, case.state)) or (state.page if state is not None else None)
    if page:
        return page.format(record=record, record_id=getattr(record, "record_id", None))
    kind = getattr(record, "record_type", None)
    return DETAIL_PAGES[kind].format(record.id) if kind in DETAIL_PAGES else None


def _model(name):
    import models
    return getattr(models, name)


def _raw_rows(model, column, value):
    """Every column of the rows of `model` whose `column` is `value`, as stored (plain SQL: this runs twice per
    request)."""
    cursor = db.execute_sql(f'SELECT * FROM "{model._meta.table_name}" WHERE "{column}" = {db.obj.param} '
                            'ORDER BY "id"', (value,))
    names = [d[0] for d in cursor.description]
    return [{n: bytes(v) if isinstance(v, (memoryview, bytearray)) else v for n, v in zip(names, row)}
            for row in cursor.fetchall()]


def _other_names(case, record):
    """Names worth trying besides the form's: the model's columns and the inputs the view may read."""
    from views.common import BLUEPRINT_MODELS
    names = list(SPECIAL_NAMES)
    blueprint = case.endpoint.split(".")[0]
    model = type(record) if record is not None else (
        _model(BLUEPRINT_MODELS[blueprint]) if blueprint in BLUEPRINT_MODELS else User)
    names += list(model._meta.fields) + [f"{n}_id" for n, f in model._meta.fields.items() if hasattr(f, "rel_model")]
    if case.endpoint == "board.move":
        from views.board import FIELD_SPECS
        with open(os.path.join(ROOT, "templates", "board", "_dialog_form.html"), encoding="utf-8") as fh:
            names += list(FIELD_SPECS) + re.findall(r'name="([a-z_]+)"', fh.read())
    if case.endpoint.endswith(LINE_VIEWS):
        from views.lines import LINE_INPUTS
        names += list(LINE_INPUTS)
    return sorted(set(names))


def _url(case, record, direction):
    """The route's path for the record (every URL argument filled, else the test fails saying which)."""
    path = case.rule
    for converter, name in re.findall(r"<(?:([^:<>]+):)?([^<>]+)>", case.rule):
        if name == "record_id" or name in URL_RECORDS:
            expected = URL_RECORDS.get(name)
            if record is None or (expected and type(record).__name__ != expected):
                pytest.fail(f"{case.id}: URL argument {name!r} of {case.rule} needs a {expected or 'record'}, "
                            f"the case's state {case.state!r} gives {type(record).__name__}")
            value = record.id
        elif name == "name" and case.field:
            value = case.field
        elif name == "key" and getattr(record, "key", None):
            value = record.key
        elif name == "path" and case.not_form:
            value = "no/such/thing"
        elif name == "line_id":
            with db.connection_context():
                lines = record.line_rows()
            if not lines:
                pytest.fail(f"{case.id}: the target {record.record_type} {record.id} has no lines")
            value = lines[min(1 if direction == "up" else 0, len(lines) - 1)].id
        elif name == "direction":
            value = direction
        else:
            pytest.fail(f"{case.id}: the fuzz test does not know URL argument {name!r} of {case.rule}")
        path = path.replace(f"<{converter}:{name}>" if converter else f"<{name}>", str(value))
    return path


STATUSES = {}  # case id -> Counter of answer statuses (FUZZ_FORMS_STATS=1 prints them after each database)


@pytest.fixture(scope="module", params=DATABASES)
def world(request, tmp_path_factory):
    """The app on one database (each one in turn), with its users logged in; shared by every route's test."""
    from app import create_app
    folder = tmp_path_factory.mktemp("fuzz-forms")
    url = empty_database(request.param, folder, request)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test-secret", "INSTANCE_PATH": str(folder), "TESTING": True})
    from smtp_sink import SmtpSink
    with SmtpSink() as sink:  # the email forms send for real (to this server)
        world = World(app, db.obj)
        world.mail_url = sink.url
        yield world
    mail.configure("")
    if not db.is_closed():
        db.close()
    if os.environ.get("FUZZ_FORMS_STATS"):
        for case_id, counts in sorted(STATUSES.items()):
            print(f"{request.param} {case_id}: {sum(counts.values())} requests {dict(sorted(counts.items()))}")
        STATUSES.clear()


# ----- one request and what must hold for it -----------------------------------------------------------
def _browser_name(name):
    """A field name or file name as a browser writes it into a multipart header (CR, LF and quote escaped;
    the test client would write them raw and break the header)."""
    return name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


def _wire(value, version):
    if value is VERSION:
        return "" if version is None else str(version)
    if isinstance(value, Fresh):
        return value.value()
    if isinstance(value, tuple):
        data, filename, mimetype = value
        return (io.BytesIO(data), _browser_name(filename), mimetype)
    return value


def _describe(items):
    def short(value):
        if isinstance(value, tuple):
            return f"<file {value[1]!r}, {len(value[0])} bytes>"
        text = repr(value)
        return text if len(text) < 80 else f"{text[:60]}…({len(str(value))} chars)"
    return "[" + ", ".join(f"({name!r}, {short(value)})" for name, value in items) + "]"


def _assert_escaped(resp, context):
    if resp.mimetype != "text/html":  # JSON answers are not HTML (and come with nosniff)
        return
    body = resp.get_data(as_text=True)
    for raw in INJECTIONS:
        at = body.find(raw)
        assert at < 0, f"{context}: the raw {raw!r} is in the answer (unescaped):\n…{body[max(0, at - 300):at + 200]}…"


def _differences(before, after, ignore=()):
    counts_before, rows_before = before
    counts_after, rows_after = after
    problems = [f"{name}: {counts_before[name]} -> {counts_after[name]} rows"
                for name in counts_before if name not in ignore and counts_before[name] != counts_after[name]]
    for key, row in rows_before.items():
        new = rows_after.get(key)
        if key == "lines":
            if row != new:
                problems.append("the lines changed")
            continue
        if new is None:
            problems.append(f"{key} is gone")
            continue
        problems += [f"{key[0]} {key[1]}.{col}: {str(row[col])[:60]!r} -> {str(new[col])[:60]!r}"
                     for col in row if row[col] != new.get(col)]
    return problems


def send(world, case, record, items, htmx=True, current_url=None, direction="down", multipart=False,
         credentials=True, query=None):
    """Post the form and check: no 5xx, no raw injection echoed, nothing written when refused; follow a redirect
    the way a browser would and look at the record's page after a hostile value was saved."""
    client = world.clients[case.role]
    path = _url(case, record, direction) + (f"?{urlencode(query)}" if query else "")
    current = record  # as world.target() just read it
    version = getattr(current, "version", None)
    big = any(isinstance(v, tuple) or len(v) > 65536 for _, v in items if isinstance(v, (str, tuple)))
    multipart = big or multipart
    data = MultiDict([(_browser_name(name) if multipart else name, _wire(value, version)) for name, value in items])
    headers = {"X-CSRFToken": client.token or ""}
    if case.role == API:
        headers = {"Authorization": f"Bearer {world.api_token}"} if credentials else {}
    if htmx:
        headers["HX-Request"] = "true"
    if current_url:
        headers["HX-Current-URL"] = current_url
    content_type = "multipart/form-data" if multipart else "application/x-www-form-urlencoded"
    before = (world.counts(), world.rows(current))
    resp = client.client.post(path, data=data, headers=headers, content_type=content_type)
    STATUSES.setdefault(case.id, collections.Counter())[resp.status_code] += 1
    context = (f"POST {path} as {case.role} ({'htmx' if htmx else 'plain form'}, HX-Current-URL {current_url!r}) "
               f"with {_describe(items)} -> {resp.status_code}")
    try:
        assert resp.status_code < 500, f"{context}\n{resp.get_data(as_text=True)[:3000]}"
        if case.not_form:
            assert 400 <= resp.status_code < 500, f"{context}: a form posted to a route that takes none"
        _assert_escaped(resp, context)
        after = (world.counts(), world.rows(current))
        if resp.status_code >= 400:
            problems = _differences(before, after, LOGIN_LOGS if case.endpoint == "auth.login" else ())
            assert not problems, f"{context}: refused, yet written:\n" + "\n".join(problems)
        follow = []  # (path, as htmx)
        location = resp.headers.get("Location", "")
        if location:
            target = urlsplit(location.replace("\\", "/"))
            assert not target.netloc or target.netloc == "localhost", f"{context}: redirected off-site to {location!r}"
        if not htmx and 300 <= resp.status_code < 400 and location.startswith("/") and not location.startswith("//"):
            follow.append((location, False))
        hostile = any(isinstance(v, str) and any(raw in v for raw in INJECTIONS) for _, v in items)
        if hostile and resp.status_code < 400 and current is not None and _view_page(case, current):
            follow.append((_view_page(case, current), True))
        for page, as_htmx in follow:
            seen = client.hx_get(page) if as_htmx else client.get(page)
            assert seen.status_code < 500, f"{context}; then GET {page}: {seen.status_code}"
            _assert_escaped(seen, f"{context}; then GET {page}")
    finally:
        if current is not None:
            world.restore(case, current, before[1])
        world.after(case)
    return resp


def _affix(value, snippet, suffix=True):
    """The value with a hostile snippet appended (or put in front)."""
    if isinstance(value, Fresh):
        return Fresh(value.pattern + snippet if suffix else snippet + value.pattern)
    return value + snippet if suffix else snippet + value


def _form(data, fields, names):
    """A mutation of the page's form: values kept, replaced, dropped or duplicated, plus random fields."""
    items = []
    from_page = data.draw(st.sampled_from(("page", "page", "page", "empty")), label="start from")
    if from_page == "page":
        for name, values in fields.items():
            how = data.draw(st.sampled_from(("keep", "keep", "keep", "keep", "hostile", "hostile", "drop", "dup")),
                            label=name)
            real = data.draw(st.sampled_from(values)) if values else ""
            uploads = UPLOADS.get(name, OTHER_UPLOADS)
            if real is FILE:
                real = data.draw(st.sampled_from(uploads[0]), label="upload")
            if how == "keep":
                items.append((name, real))
            elif how == "hostile":
                if values == [FILE]:
                    value = data.draw(uploads[1], label="upload")
                elif isinstance(real, (str, Fresh)) and data.draw(st.booleans(), label=f"{name} mutated"):
                    snippet = data.draw(st.sampled_from(SNIPPETS), label="snippet")
                    value = _affix(real, snippet, data.draw(st.booleans(), label="suffix"))
                else:
                    value = data.draw(VALUES, label=f"{name} value")
                items.append((name, value))
            elif how == "dup":
                pair = [(name, real), (name, data.draw(VALUES, label=f"{name} second value"))]
                items += pair if data.draw(st.booleans(), label="hostile last") else pair[::-1]
    for _ in range(data.draw(st.integers(0, 3), label="extra fields")):
        name = data.draw(st.one_of(st.sampled_from(list(fields) + names), st.text(max_size=12)), label="extra name")
        value = data.draw(VALUES, label="extra value")
        if data.draw(st.booleans(), label="prepend"):
            items.insert(0, (name, value))
        else:
            items.append((name, value))
    return items


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_forms(world, case):
    if case.problem:
        pytest.fail(case.problem)
    if db.obj is not world.database:
        db.initialize(world.database)
    mail.configure(world.mail_url, "sales@example.com")  # (another module's app may have been made since)
    record = world.target(case)
    path = _url(case, record, "down")
    fields, names = world.fields(case, record, path)

    if case.not_form:  # hostile forms, with and without credentials, and with a file
        hostile_form = [(n, INJECTIONS[i % 2] + "\x00") for i, n in enumerate(names[:20])] or [("x", SCRIPT)]
        send(world, case, record, hostile_form)
        send(world, case, world.target(case), hostile_form, credentials=False)
        send(world, case, world.target(case), hostile_form + [("logo", (PNG, "logo.png", "image/png"))])
    else:  # a few fixed extremes: a 1 MB value in a real field, every field duplicated, NUL bytes
        real = [n for n in fields if n != "version"] or ["x"]
        page_values = [(n, UPLOADS.get(n, OTHER_UPLOADS)[0][-1] if v[0] is FILE else v[0]) for n, v in fields.items()
                       if v]
        injections = [(n, INJECTIONS[i % 2]) for i, (n, _) in enumerate(page_values) if n != "version"]
        big = real[len(case.id) % len(real)]
        send(world, case, record, [(n, v) for n, v in page_values if n != big] + [(big, BIG)])
        send(world, case, world.target(case), page_values + injections, htmx=False)
        for name, value in page_values:  # a NUL byte after a real value, the other fields as the page has them
            if name != "version" and value and isinstance(value, (str, Fresh)):
                send(world, case, world.target(case),
                     [(n, _affix(v, "\x00") if n == name else v) for n, v in page_values])

    @settings(max_examples=case.examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(data=st.data())
    def hostile(data):
        target = world.target(case)
        form_fields, other_names = world.fields(case, target, _url(case, target, "down"))
        multipart = data.draw(st.booleans(), label="multipart")
        items = [(n, v) for n, v in _form(data, form_fields, other_names)
                 if n not in PENDING_NAMES.get(case.endpoint, ())]
        if case.not_form and not items:
            items = [("x", "")]  # an empty body is an empty JSON object to the API: not a form
        if case.endpoint == "auth.login" and data.draw(st.booleans(), label="throttle cleared"):
            with db.connection_context():
                LoginFailure.delete().execute()
        send(world, case, target, items, htmx=data.draw(st.sampled_from((True, True, True, False)), label="htmx"),
             current_url=data.draw(CURRENT_URLS, label="HX-Current-URL"),
             direction=data.draw(st.sampled_from(("up", "down")), label="direction"), multipart=multipart,
             credentials=data.draw(st.booleans(), label="credentials") if case.not_form else True,
             query={QUERIES[case.endpoint]: data.draw(st.one_of(st.sampled_from(NEXT_PAGES), SMALL_VALUES))}
             if case.endpoint in QUERIES else None)

    hostile()


# ----- bugs this fuzzing found, pinned -----------------------------------------------------------------------
def test_move_with_a_field_named_like_a_parameter(world):
    """A form field named like a parameter of move_to (self, actor, target, expected_version) is not passed
    on as a move input (it was a TypeError, a 500)."""
    case = next(c for c in CASES if c.endpoint == "board.move" and c.state == "lead")
    for name in ("self", "actor", "target", "expected_version"):
        record = world.target(case)
        send(world, case, record, [("record", f"lead:{record.id}"), ("to", "lost"), ("version", VERSION),
                                   ("reason", "x"), (name, "1")])


def test_multipart_part_without_a_name(world):
    """A multipart part without a name is a 400 (it was a 500 on every POST route, found by this fuzzing)."""
    client = world.clients[ANON]
    for disposition in (b'form-data', b'form-data; name="\\"'):  # a browser sends a field named \ like this
        body = b"--X\r\nContent-Disposition: " + disposition + b"\r\n\r\nvalue\r\n--X--\r\n"
        resp = client.client.post("/login", data=body, content_type="multipart/form-data; boundary=X",
                                  headers={"X-CSRFToken": client.token or ""})
        assert resp.status_code == 400
