"""Demo data: a German B2B IT seller with a realistic pipeline, built through the real model methods.

Every business step (qualify, propose, win, invoice, pay, lose, cancel) is done by the model method a
user's click would call, so documents, numbers and history are real. The seeder plays an agenda of
dated actions in time order; after each action the rows it wrote get that action's demo time instead of
the wall clock (created_at, stage_entered_at, last_activity_at, history `at`, …), so cards age, rot and
show plausible timelines. Deterministic for a given seed and reference date.
"""
import datetime
import random
import unicodedata
from decimal import Decimal

from peewee import IntegrityError

from . import base
from .activity import Activity
from .base import connection, write_transaction
from .catalog import Product
from .errors import ValidationError
from .invoice import Invoice
from .lead import Lead
from .opportunity import Opportunity
from .order import Order
from .party import Account, Contact
from .quote import Quote
from .settings import Settings
from .user import Team, User

_USERS = (
    ("anna@demo.pipeline", "demo-password-1", "admin", "Anna Becker"),
    ("markus@demo.pipeline", "demo-password-2", "manager", "Markus Schneider"),
    ("lena@demo.pipeline", "demo-password-3", "seller", "Lena Vogt"),
    ("tobias@demo.pipeline", "demo-password-4", "seller", "Tobias Krüger"),
)
DEMO_TEAM = "Field sales"
DEMO_LOGINS = [(email, password, role) for email, password, role, _ in _USERS]

COMPANY = {
    "company_name": "Falkenberg IT-Systeme GmbH",
    "address": "Gutenbergstraße 14\n70176 Stuttgart\nGermany",
    "vat_id": "DE287654321",
    "company_register": "Amtsgericht Stuttgart, HRB 765432",
    "legal_info": "Managing directors: Jana Falkenberg, Tim Berger",
    "email": "info@falkenberg-it.de",
    "phone": "+49 711 2250480",
    "bank_details": "Commerzbank AG\nIBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX",
    "quote_validity_days": 30,
    "payment_terms_days": 30,
    "payment_terms_text": "Payable within 30 days of the invoice date without deduction.",
}

# sku, name, unit, list price, tax rate %, active
PRODUCTS = (
    ("SW-ERP-BASE", "Falkenberg ERP Basic – server licence", "licence", "4900.00", "19", True),
    ("SW-ERP-WMS", "ERP module Warehouse Management", "licence", "1850.00", "19", True),
    ("SW-CRM-USR", "Cloud CRM user subscription (12 months)", "user", "384.00", "19", True),
    ("SW-SUP-STD", "Software maintenance Standard (12 months)", "year", "1200.00", "19", True),
    ("SW-SUP-PRM", "Software maintenance Premium 24/7 (12 months)", "year", "3600.00", "19", True),
    ("SV-HOST-M", "Managed hosting, dedicated VM (per month)", "month", "490.00", "19", True),
    ("SV-CONS-H", "Consulting, senior consultant", "hour", "145.00", "19", True),
    ("SV-IMPL-D", "Implementation day on site", "day", "1150.00", "19", True),
    ("SV-TRAIN-D", "User training day (up to 8 participants)", "day", "980.00", "19", True),
    ("HW-NB-14", "Business notebook 14\" (Core Ultra 7, 32 GB, 1 TB SSD)", "piece", "1489.00", "19", True),
    ("HW-MON-27", "Monitor 27\" QHD, height-adjustable", "piece", "329.00", "19", True),
    ("HW-DOCK-U4", "USB4 docking station", "piece", "219.00", "19", True),
    ("HW-SRV-2U", "Rack server 2U (2× Xeon, 256 GB RAM)", "piece", "8950.00", "19", True),
    ("HW-NAS-8", "NAS 8-bay incl. 8 × 12 TB", "set", "3480.00", "19", True),
    ("DOC-HB-DE", "Printed user handbook ERP (German, 240 pages)", "piece", "39.00", "7", True),
    ("EXM-CERT", "Certification exam fee", "piece", "250.00", "0", True),
    ("HW-NB-13", "Business notebook 13\" (previous model)", "piece", "1199.00", "19", False),
)
EXEMPTIONS = {"EXM-CERT": "§ 4 Nr. 21 UStG"}  # exempt from VAT (category E), not zero rated
GOODS = ("HW-", "DOC-")  # hardware and printed handbooks are goods; the rest are services

# topic, lines: (sku, (min qty, max qty) or "n" = the first line's quantity)
BUNDLES = (
    ("Notebook refresh ({n} workplaces)", (("HW-NB-14", (5, 30)), ("HW-MON-27", "n"), ("HW-DOCK-U4", "n"))),
    ("ERP introduction", (("SW-ERP-BASE", (1, 1)), ("SV-IMPL-D", (3, 10)), ("SV-TRAIN-D", (1, 3)),
                          ("DOC-HB-DE", (5, 20)))),
    ("Warehouse management module", (("SW-ERP-WMS", (1, 1)), ("SV-CONS-H", (16, 40)))),
    ("CRM for the sales team ({n} users)", (("SW-CRM-USR", (5, 40)), ("SV-TRAIN-D", (1, 2)))),
    ("Server room modernisation", (("HW-SRV-2U", (1, 2)), ("HW-NAS-8", (1, 1)), ("SV-IMPL-D", (2, 4)))),
    ("Software maintenance renewal {year}", (("SW-SUP-STD", (1, 1)),)),
    ("Upgrade to Premium support", (("SW-SUP-PRM", (1, 1)), ("SV-CONS-H", (4, 8)))),
    ("Migration to managed hosting", (("SV-HOST-M", (12, 36)), ("SV-CONS-H", (8, 24)))),
    ("Backup and storage upgrade", (("HW-NAS-8", (1, 2)), ("SV-CONS-H", (8, 16)))),
    ("Administrator certification ({n} staff)", (("EXM-CERT", (2, 6)), ("SV-TRAIN-D", (2, 4)),
                                                   ("DOC-HB-DE", "n"))),
    ("Monitors for the open-plan office ({n} desks)", (("HW-MON-27", (10, 40)), ("HW-DOCK-U4", "n"))),
    ("Field service notebooks ({n} devices)", (("HW-NB-14", (4, 12)), ("SW-CRM-USR", "n"),
                                               ("SV-TRAIN-D", (1, 1)))),
)

# name, street, postal code, city, country, VAT id, phone prefix, domain, three people (name, job title)
ACCOUNTS = (
    ("Müller Maschinenbau GmbH", "Industriestraße 42", "70565", "Stuttgart", "DE", "DE811234567",
     "+49 711 7820", "mueller-maschinenbau.de",
     (("Klaus Müller", "Managing Director"), ("Sabine Roth", "Head of IT"), ("Jens Albrecht", "Purchasing Manager"))),
    ("Brauerei Hofmann KG", "Am Kaulberg 7", "96049", "Bamberg", "DE", "DE132456781",
     "+49 951 50913", "brauerei-hofmann.de",
     (("Georg Hofmann", "Owner"), ("Petra Lang", "Office Manager"), ("Florian Seidl", "Head of Logistics"))),
    ("Rheinland Logistik AG", "Hafenstraße 118", "50996", "Köln", "DE", "DE214365870",
     "+49 221 93847", "rheinland-logistik.de",
     (("Dr. Ursula Kramer", "CFO"), ("Michael Brandt", "IT Manager"), ("Aylin Demir", "Warehouse Operations Lead"))),
    ("Alpenmolkerei Allgäu eG", "Kemptener Straße 21", "87435", "Kempten", "DE", "DE128765439",
     "+49 831 52006", "alpenmolkerei-allgaeu.de",
     (("Johann Berger", "Chairman of the Board"), ("Monika Huber", "Head of Controlling"),
      ("Sebastian Wagner", "IT Administrator"))),
    ("Hanse Medizintechnik GmbH", "Großer Burstah 31", "20457", "Hamburg", "DE", "DE267891234",
     "+49 40 3208", "hanse-medizintechnik.de",
     (("Birte Jensen", "Managing Director"), ("Lars Petersen", "Head of IT"), ("Nina Schulz", "Quality Manager"))),
    ("Spreewerk Energie GmbH", "Friedrichstraße 200", "10117", "Berlin", "DE", "DE301245678",
     "+49 30 2091", "spreewerk-energie.de",
     (("Thomas Richter", "CTO"), ("Mareike Weiß", "Procurement"), ("Daniel Yilmaz", "Project Manager"))),
    ("Schäfer & Söhne Holzbau GmbH", "Schwarzwaldstraße 88", "79117", "Freiburg im Breisgau", "DE",
     "DE142356789", "+49 761 47912", "schaefer-holzbau.de",
     (("Wolfgang Schäfer", "Managing Director"), ("Carina Schäfer", "Commercial Manager"),
      ("Uwe Kern", "Site Manager"))),
    ("Weber & Partner Steuerberatung PartG mbB", "Leopoldstraße 54", "80802", "München", "DE", "DE129876543",
     "+49 89 3302", "weber-partner-stb.de",
     (("Christine Weber", "Partner"), ("Andreas Haas", "Partner"), ("Lisa Maier", "Office Manager"))),
    ("Lindner Architekten GmbH", "Karl-Liebknecht-Straße 12", "04107", "Leipzig", "DE", "DE233445566",
     "+49 341 21980", "lindner-architekten.de",
     (("Frank Lindner", "Managing Director"), ("Juliane Krause", "Architect"), ("Paul Winter", "IT Coordinator"))),
    ("Nordsee Fischhandel GmbH", "Am Fischbahnhof 3", "27572", "Bremerhaven", "DE", "DE114477889",
     "+49 471 97340", "nordsee-fischhandel.de",
     (("Hauke Carstens", "Owner"), ("Svenja Ahrens", "Accounting"), ("Ole Hansen", "Dispatch Manager"))),
    ("Kaiser Autohaus GmbH & Co. KG", "Mainzer Landstraße 340", "60326", "Frankfurt am Main", "DE",
     "DE256789012", "+49 69 7390", "kaiser-autohaus.de",
     (("Ralf Kaiser", "Managing Director"), ("Melanie Fischer", "Service Manager"), ("Kevin Lorenz", "IT Support"))),
    ("Klinikum Mittelrhein gGmbH", "Koblenzer Straße 115", "56073", "Koblenz", "DE", "DE149988776",
     "+49 261 4990", "klinikum-mittelrhein.de",
     (("Dr. Stefanie Graf", "Head of Administration"), ("Matthias Busch", "Head of IT"),
      ("Sandra Köhler", "Purchasing"))),
    ("Donau Bau GmbH", "Wagramer Straße 19", "1220", "Wien", "AT", "ATU63458712",
     "+43 1 2584", "donaubau.at",
     (("Karl Pichler", "Managing Director"), ("Elisabeth Gruber", "Commercial Director"),
      ("Lukas Steiner", "IT Manager"))),
    ("Tiroler Seilbahntechnik GmbH", "Grabenweg 68", "6020", "Innsbruck", "AT", "ATU71234589",
     "+43 512 3410", "tiroler-seilbahntechnik.at",
     (("Andreas Hofer", "Technical Director"), ("Verena Moser", "Head of Finance"),
      ("Markus Egger", "Service Coordinator"))),
    ("Zürcher Privatklinik AG", "Seefeldstrasse 214", "8008", "Zürich", "CH", "CHE-112.345.678 MWST",
     "+41 44 3871", "zuercher-privatklinik.ch",
     (("Dr. Beat Keller", "CEO"), ("Corinne Meier", "Head of IT"), ("Reto Baumann", "Purchasing"))),
    ("Van der Berg Transport B.V.", "Waalhaven Zuidzijde 21", "3089 JH", "Rotterdam", "NL", "NL852341679B01",
     "+31 10 4290", "vanderbergtransport.nl",
     (("Jeroen van der Berg", "Director"), ("Sanne Visser", "IT Lead"), ("Bram de Jong", "Planning Manager"))),
    ("Atelier Lumière SARL", "12 Rue de la République", "69002", "Lyon", "FR", "FR40123456789",
     "+33 4 7838", "atelier-lumiere.fr",
     (("Camille Durand", "Managing Director"), ("Julien Moreau", "Studio Manager"), ("Léa Bernard", "Designer"))),
    ("Ferri Tessuti S.r.l.", "Via Giuseppe Verdi 8", "20121", "Milano", "IT", "IT04567890123",
     "+39 02 8645", "ferritessuti.it",
     (("Giulia Ferri", "Managing Director"), ("Marco Bianchi", "IT Manager"), ("Francesca Conti", "Buyer"))),
    ("Kowalski Meble Sp. z o.o.", "ul. Głogowska 155", "60-243", "Poznań", "PL", "PL7781234567",
     "+48 61 8653", "kowalski-meble.pl",
     (("Piotr Kowalski", "CEO"), ("Anna Nowak", "Finance Manager"), ("Tomasz Wiśniewski", "IT Administrator"))),
    ("Nordhavn Design ApS", "Sandkaj 29", "2150", "København", "DK", "DK35812467",
     "+45 3318", "nordhavndesign.dk",
     (("Mette Larsen", "CEO"), ("Henrik Sørensen", "Head of Operations"), ("Freja Nielsen", "Office Manager"))),
    ("Vltava Strojírny s.r.o.", "Na Florenci 2116/15", "110 00", "Praha", "CZ", "CZ27184567",
     "+420 222 310", "vltava-strojirny.cz",
     (("Jan Novák", "Managing Director"), ("Petra Svobodová", "Finance Manager"),
      ("Martin Dvořák", "Head of Production IT"))),
)

# Companies that are not accounts yet: qualifying their lead creates the account.
NEW_COMPANIES = (
    ("Bäckerei Sonntag GmbH", "Heilbronn", "Tanja Sonntag", "Managing Director", "baeckerei-sonntag.de",
     "+49 7131 58820", 0),
    ("Medienhaus Rhein-Main GmbH", "Mainz", "Felix Hartmann", "Head of IT", "medienhaus-rheinmain.de",
     "+49 6131 48800-22", 8),
)

# Open leads in Qualify: name, company, job title, email, phone, source, topic, budget, timeframe,
# decision maker known, rating, owner index, days since created, private buyer
OPEN_LEADS = (
    ("Julia Brandt", "Kessler Immobilien GmbH", "Office Manager", "j.brandt@kessler-immobilien.de",
     "+49 621 43390-14", "web form", "CRM for 8 property managers", "4500", "this quarter", True, "hot", 2, 2,
     False),
    ("Dr. Martin Bergmann", "Zahnarztpraxis Dr. Bergmann", "Owner", "praxis@dr-bergmann-zahnarzt.de",
     "+49 7071 22145", "referral", "Notebooks and monitors for the practice", None, "next quarter", True, "warm",
     3, 6, False),
    ("Stefan Horn", "Hotel Seeblick GmbH", "Head of Operations", "s.horn@hotel-seeblick-konstanz.de",
     "+49 7531 90870", "trade show", "Managed hosting for the booking system", "9000", None, False, "warm", 1, 11,
     False),
    ("Katrin Wolf", "Müller Maschinenbau GmbH", "Production Planning", "katrin.wolf@mueller-maschinenbau.de",
     "+49 711 7820-41", "email", "Warehouse module for the second plant", "15000", "this year", False, "warm", 2, 4,
     False),
    ("Pieter de Vries", "Van der Berg Transport B.V.", "Branch Manager Antwerp",
     "pieter.devries@vanderbergtransport.nl", "+31 10 4290-55", "partner", "CRM licences for the Antwerp branch",
     "6000", "next quarter", False, "cold", 3, 17, False),
    ("Thomas Engel", "", "Freelance photographer", "", "+49 170 5566123", "advertisement",
     "Notebook and NAS for the home studio", "3500", "immediate", True, "warm", 2, 1, True),
    ("Claudia Neumann", "Steiner Elektrotechnik GmbH", "Commercial Director", "c.neumann@steiner-elektro.de", "",
     "import", "ERP replacement (currently Sage 100)", "40000", "this year", False, "cold", 1, 23, False),
    ("Luca Romano", "Ferri Tessuti S.r.l.", "Production Manager", "luca.romano@ferritessuti.it", "+39 02 8645-31",
     "email", "ERP training for new warehouse staff", None, "unknown", False, "warm", 3, 8, False),
    ("Anja Lehmann", "Fahrschule Lehmann", "Owner", "info@fahrschule-lehmann.de", "+49 351 8012345", "web form",
     "5 notebooks for theory lessons", "7500", "immediate", True, "hot", 3, 1, False),
    ("Markus Pohl", "Pohl Sanitärtechnik GmbH", "Managing Director", "", "", "trade show",
     "Server replacement", None, None, False, "cold", 2, 14, False),
    ("Sophie Martin", "Atelier Lumière SARL", "Project Manager", "sophie.martin@atelier-lumiere.fr",
     "+33 4 7838-20", "email", "Backup solution for the design archive", "5000", "this quarter", False, "warm", 1,
     5, False),
    ("Mette Larsen", "Nordhavn Design ApS", "CEO", "mette.larsen@nordhavndesign.dk", "+45 3318-10", "referral",
     "Upgrade maintenance to Premium", "2400", "next quarter", True, "hot", 3, 3, False),
)

# Disqualified leads: name, company, email, source, topic, reason, note, owner index, days created, days closed
DISQUALIFIED_LEADS = (
    ("Nadine Fuchs", "Fuchs Eventtechnik GmbH", "n.fuchs@fuchs-eventtechnik.de", "advertisement",
     "Rental notebooks for trade fairs", "cannot contact", "Three calls and two emails without an answer.", 2, 41,
     19),
    ("Ralf Becker", "Becker Bau GmbH", "ralf.becker@beckerbau-ulm.de", "trade show", "Construction site tablets",
     "no longer interested", "IT budget postponed to next year.", 3, 33, 12),
    ("Emma Wagner", "Wagner Optik", "emma@wagner-optik.de", "referral", "Notebooks for three stores",
     "lost", "Bought from a local reseller before we could quote.", 2, 27, 9),
    ("Oliver Gruber", "Gruber Logistik GmbH", "o.gruber@gruber-logistik.at", "import",
     "Warehouse management system", "canceled", "Project canceled by the parent company.", 1, 52, 30),
)

LOST_DEALS = (
    ("develop", "timing", "", "Project postponed to the next fiscal year."),
    ("develop", "no decision", "", "No budget approval; the contact stopped answering."),
    ("propose", "price", "Bechtle AG", "Competitor was 12 % cheaper on the hardware."),
    ("propose", "competitor", "SAP Business One (partner)", "The group standard is SAP."),
    ("close", "competitor", "Microsoft Dynamics 365 Business Central",
     "Went with the Dynamics partner already working for their parent company."),
)

INVOICE_STATES = ("paid", "paid", "paid_long_ago", "unpaid", "unpaid", "overdue", "overdue", "reissued")

SOURCES = ("web form", "web form", "email", "trade show", "referral", "referral", "partner", "advertisement")
TIMEFRAMES = ("immediate", "this quarter", "this quarter", "next quarter", "this year")
MINUTES = (0, 5, 10, 15, 20, 30, 35, 40, 45, 50)
ROT = {"develop": 14, "propose": 10, "close": 7}

# Gap in days between the previous phase of a deal and this one.
GAPS = {"qualify": (2, 12), "propose": (4, 18), "close": (3, 12), "revise": (2, 5), "reclose": (1, 3),
        "won": (3, 14), "invoice": (3, 12), "paid": (8, 26), "reissue": (2, 5), "lost": (2, 14),
        "cancel": (6, 14)}

DONE = {
    "lead": (("call", "First call with {first}", "Needs and timeline noted."),
             ("email", "Sent brochure and price list to {first}", "")),
    "develop": (("call", "Discovery call with {first}", "Current setup, pain points and timeline discussed."),
                ("meeting", "Requirements workshop in {city}", "Workshop with the project team; notes shared."),
                ("meeting", "Online demo for {first} and team",
                 "Demo of the standard processes; questions on interfaces."),
                ("note", "Budget confirmed by {first}", "")),
    "propose": (("email", "Sent quote {quote} to {first}", ""),
                ("call", "Walked {first} through quote {quote}", "Questions about licences and support answered."),
                ("note", "Customer compares two offers", "Decision expected after the management meeting.")),
    "close": (("meeting", "Negotiation meeting in {city}", "Discount and payment terms discussed."),
              ("call", "Contract questions from {first}", "Clarified delivery and acceptance."),
              ("email", "Sent the order form to {first}", "")),
}
TASKS = {
    "lead": ("Call {first} to qualify the request", "Send product information to {first}"),
    "develop": ("Call {first} about the budget", "Prepare the on-site demo", "Send reference customers to {first}"),
    "propose": ("Follow up on quote {quote}", "Check delivery times with the distributor",
                "Send the updated quote to {first}"),
    "close": ("Get the signed order from {first}", "Agree the project kick-off date", "Follow up on quote {quote}"),
    "fulfill": ("Schedule delivery and installation", "Order the hardware from the distributor",
                "Plan the training dates with {first}"),
}


class _AlreadySeeded(Exception):
    """The database has users: the seeder must not touch it."""


def seed_demo(currency="EUR", today=None, seed=20261123):
    """Fill an empty database with the demo company; returns False (writing nothing) if it has users."""
    day = today or base.today()
    if day > base.today():
        raise ValueError("The demo reference date cannot be in the future.")
    with connection():
        try:
            with write_transaction():
                if User.select().exists():
                    raise _AlreadySeeded()
                _Seeder(currency, day, seed).run()
        except _AlreadySeeded:
            return False
    return True


def _months_later(day, months):
    """The same day `months` later (the month's last day when it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return datetime.date(year, month, min(day.day, last))
        except ValueError:
            continue


def _ascii(text):
    text = text.replace("ß", "ss").replace("ł", "l").replace("ø", "o").replace("æ", "ae")
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue")):
        text = text.replace(umlaut, plain)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _given_names(name):
    return [p for p in name.split() if p.lower() not in ("dr.", "prof.", "ing.")]


def _email(name, domain):
    parts = _given_names(_ascii(name).lower())
    return f"{parts[0]}.{''.join(parts[1:])}@{domain}"


class _Deal:
    """One lead and what becomes of it: the plan, then the records the actions create."""

    def __init__(self, **values):
        self.lead = None
        self.opp_id = None
        self.qualify_inputs = {}
        self.lost = None
        self.invoice_state = None
        self.rotting = False
        self.revised = False
        self.no_lines = False
        self.late = False
        self.invoice_id = None
        self.__dict__.update(values)

    @property
    def opp(self):
        return Opportunity.get_by_id(self.opp_id)


class _Seeder:
    def __init__(self, currency, today, seed):
        self.currency = currency
        self.today = today
        self.rng = random.Random(seed)
        self.agenda = []

    # ----- time -----------------------------------------------------------------------------
    def workday(self, days_ago):
        """The date `days_ago` working days (Monday to Friday) before the reference date."""
        day = self.today
        if days_ago <= 0:
            return day
        if day.weekday() > 4:
            day += datetime.timedelta(days=7 - day.weekday())
        weeks, rest = divmod(days_ago, 5)
        day -= datetime.timedelta(weeks=weeks)
        while rest:
            day -= datetime.timedelta(days=1)
            rest -= day.weekday() < 5
        return day

    def moment(self, days_ago):
        """A working-hours moment `days_ago` working days before the reference date."""
        day = self.workday(days_ago)
        return datetime.datetime.combine(day, datetime.time(self.rng.randint(8, 17), self.rng.choice(MINUTES)))

    def between(self, start, end):
        """A working-hours moment strictly between two moments (their midpoint when none fits)."""
        span = (end.date() - start.date()).days
        day = start.date() + datetime.timedelta(days=self.rng.randint(0, max(span, 0)))
        if day.weekday() > 4:
            day += datetime.timedelta(days=7 - day.weekday())
        moment = datetime.datetime.combine(day, datetime.time(self.rng.randint(8, 17), self.rng.choice(MINUTES)))
        if not start < moment < end:
            moment = (start + (end - start) / 2).replace(microsecond=0)
        return moment

    def due(self, days_from_today):
        """A due date on a working day: later ones move to Monday, overdue ones back to Friday."""
        day = self.today + datetime.timedelta(days=days_from_today)
        if day.weekday() > 4:
            day += datetime.timedelta(days=7 - day.weekday()) if days_from_today > 0 else \
                -datetime.timedelta(days=day.weekday() - 4)
        return day

    def days(self, phases, fixed):
        """Working days ago of each phase, walking back from the fixed ones with the usual gaps."""
        result = dict(fixed)
        for index in range(len(phases) - 1, 0, -1):
            later, earlier = phases[index], phases[index - 1]
            if earlier not in result:
                result[earlier] = result[later] + self.rng.randint(*GAPS[later])
        return result

    def at(self, when, action, *args):
        self.agenda.append((when, len(self.agenda), action, args))

    def play(self):
        """Run the agenda in time order, each action on the demo clock (its records and the documents it
        renders carry its moment)."""
        for when, _, action, args in sorted(self.agenda, key=lambda item: (item[0], item[1])):
            self.when = when
            with base.clock_at(when):
                action(*args)

    def past(self, when):
        """A date for a model method that refuses future dates."""
        return min(when.date(), base.today())

    # ----- setup ----------------------------------------------------------------------------
    def run(self):
        self.create_users()
        self.configure()
        self.create_products()
        self.create_accounts()
        for deal in self.plan_deals():
            self.schedule_deal(deal)
        self.schedule_open_leads()
        self.schedule_disqualified_leads()
        self.play()
        self.finish_quotes()

    def create_users(self):
        with base.clock_at(self.moment(340)):
            self._create_users()

    def _create_users(self):
        try:
            team = Team.create(name=DEMO_TEAM) if not Team.select().where(Team.name == DEMO_TEAM).exists() else None
            if team is None:
                raise _AlreadySeeded()
            # The admin works across teams; the manager and the sellers form the field-sales team.
            self.users = [User.create_user(email, password, name=name, role=role,
                                           team=None if role == "admin" else team)
                          for email, password, role, name in _USERS]
        except (IntegrityError, ValidationError):
            raise _AlreadySeeded() from None
        self.admin, self.sellers = self.users[0], self.users[1:]

    def configure(self):
        settings = Settings.load()
        for name, value in COMPANY.items():
            setattr(settings, name, value)
        settings.currency = self.currency
        settings.validate()
        settings.save()
        self.validity = settings.quote_validity_days

    def create_products(self):
        self.products = {}
        with base.clock_at(self.moment(330)):
            for sku, name, unit, price, tax, active in PRODUCTS:
                self.products[sku] = Product.create_product(self.admin, sku=sku, name=name, unit=unit,
                                                            list_price=price, tax_rate=tax, active=active,
                                                            tax_exemption=EXEMPTIONS.get(sku, ""),
                                                            supply="goods" if sku.startswith(GOODS) else "services")

    def create_accounts(self):
        self.accounts = []
        created_days = sorted((self.rng.randint(130, 320) for _ in ACCOUNTS), reverse=True)
        for spec, days in zip(ACCOUNTS, created_days):
            name, street, postal, city, country, vat, phone, domain, people = spec
            owner = self.rng.choice(self.sellers)
            persons = [{"name": n, "job_title": t, "email": _email(n, domain), "phone": f"{phone}-{11 + 7 * i}"}
                       for i, (n, t) in enumerate(people)]
            with base.clock_at(self.moment(days)):
                account = Account.create_account(owner, name=name, street=street, postal_code=postal, city=city,
                                                 country=country, vat_id=vat, phone=f"{phone}-0",
                                                 email=f"info@{domain}", website=f"https://www.{domain}")
                for person in persons[:self.rng.randint(1, 3)]:
                    Contact.create_contact(owner, account=account, city=city, country=country, **person)
            self.accounts.append({"account": account, "owner": owner, "people": persons, "city": city,
                                  "foreign": country != "DE", "country": country})

    # ----- deals ----------------------------------------------------------------------------
    def plan_deals(self):
        rng = self.rng
        targets = (["develop"] * 10 + ["propose"] * 8 + ["close"] * 7 + ["fulfill"] * 6 + ["invoiced"] * 8
                   + ["lost"] * 5 + ["canceled"])
        order = [i for _ in range(3) for i in rng.sample(range(len(ACCOUNTS)), len(ACCOUNTS))]
        deals = []
        slots = iter(order)
        bundles = iter([b for _ in range(4) for b in rng.sample(BUNDLES, len(BUNDLES))])
        per_target = {}
        for target in targets:
            index = per_target[target] = per_target.get(target, -1) + 1
            if target == "develop" and index < len(NEW_COMPANIES):
                company, city, person, title, domain, phone, bundle = NEW_COMPANIES[index]
                place = {"account": None, "owner": rng.choice(self.sellers), "city": city, "foreign": False,
                         "people": [{"name": person, "job_title": title, "email": _email(person, domain),
                                     "phone": phone}], "company": company}
                bundle = BUNDLES[bundle]
            else:
                place = self.accounts[next(slots)]
                bundle = next(bundles)
            owner = place["owner"] if rng.random() < 0.75 else rng.choice(self.sellers)
            deal = _Deal(target=target, place=place, owner=owner, person=rng.choice(place["people"]),
                         bundle=bundle)
            if target == "develop":
                deal.no_lines = index in (2, 3, 4)
                deal.rotting = index in (5, 6)
                if index in (1, 4, 7):
                    deal.qualify_inputs = {"budget_amount": None, "purchase_timeframe": None}
            elif target == "propose":
                deal.rotting = index in (1, 4)
                deal.late = index == 2
            elif target == "close":
                deal.revised = index == 0
                deal.rotting = index == 3
                deal.late = index in (1, 4)
            elif target == "invoiced":
                deal.invoice_state = INVOICE_STATES[index]
            elif target == "lost":
                deal.lost = LOST_DEALS[index]
            deals.append(deal)
        return deals

    def lines_for(self, deal):
        """The deal's product lines: (product, quantity, discount %, tax rate or None)."""
        rng = self.rng
        topic, items = deal.bundle
        lines, first = [], None
        for sku, qty in items:
            quantity = first if qty == "n" else rng.randint(*qty)
            first = first or quantity
            product = self.products[sku]
            discount = rng.choice((0, 0, 0, 5, 10)) if product.unit in ("piece", "licence", "user", "set") else 0
            lines.append((product, quantity, discount))
        if len(lines) > 2 and rng.random() < 0.25:
            lines.pop()
        topic = topic.format(n=first, year=self.today.year + 1)
        return topic, lines

    def schedule_deal(self, deal):
        rng = self.rng
        target = deal.target
        deal.topic, deal.lines = self.lines_for(deal)
        value = sum((p.list_price * q * (100 - d) / 100 for p, q, d in deal.lines), Decimal(0))
        deal.budget = (value * rng.randint(85, 125) / 100 / 500).to_integral_value() * 500 or Decimal(500)
        deal.timeframe = rng.choice(TIMEFRAMES)
        path = ["lead", "qualify"]
        if target == "develop":
            fixed = {"qualify": rng.randint(16, 22) if deal.rotting else rng.randint(2, 9)}
        elif target == "propose":
            path += ["propose"]
            fixed = {"propose": rng.randint(9, 16) if deal.rotting else rng.randint(1, 6)}
        elif target == "close" and deal.revised:
            path += ["propose", "close", "revise", "reclose"]
            fixed = {"reclose": rng.randint(1, 4)}
        elif target == "close":
            path += ["propose", "close"]
            fixed = {"close": rng.randint(6, 11) if deal.rotting else rng.randint(1, 4)}
        elif target == "fulfill":
            path += ["propose", "close", "won"]
            fixed = {"won": rng.randint(1, 13)}
        elif target == "canceled":
            path += ["propose", "close", "won", "cancel"]
            fixed = {"cancel": rng.randint(4, 9)}
        elif target == "lost":
            path += {"develop": [], "propose": ["propose"], "close": ["propose", "close"]}[deal.lost[0]] + ["lost"]
            fixed = {"lost": rng.randint(1, 20)}
        else:
            path += ["propose", "close", "won", "invoice"]
            state = deal.invoice_state
            if state == "paid":
                path.append("paid")
                fixed = {"paid": rng.randint(1, 5), "invoice": rng.randint(12, 18)}
            elif state == "paid_long_ago":
                path.append("paid")
                fixed = {"paid": rng.randint(6, 15)}
            elif state == "unpaid":
                fixed = {"invoice": rng.randint(2, 15)}
            elif state == "overdue":
                fixed = {"invoice": rng.randint(26, 40)}
            else:
                path.append("reissue")
                fixed = {"reissue": rng.randint(2, 7)}
        days = self.days(path, fixed)
        times = {phase: self.moment(days[phase]) for phase in path}
        deal.times = times
        deal.close_date = self.close_date(deal, days)

        self.at(times["lead"], self.create_deal_lead, deal)
        if rng.random() < 0.6:
            self.at(self.between(times["lead"], times["qualify"]), self.log_done, deal, "lead")
        self.at(times["qualify"], self.qualify, deal)
        for phase in path[2:]:
            self.at(times[phase], getattr(self, f"do_{phase}"), deal)
        self.schedule_deal_activities(deal, path, days, times)

    def close_date(self, deal, days):
        rng, today = self.rng, self.today
        offset = {"develop": (14, 120), "propose": (-7, 60), "close": (-21, 30)}.get(deal.target)
        if deal.late:
            offset = (-21, -2)
        if offset:
            return today + datetime.timedelta(days=rng.randint(*offset))
        end = self.workday(days.get("won", days.get("lost", 0)))
        return end + datetime.timedelta(days=rng.randint(-5, 20))

    def schedule_deal_activities(self, deal, path, days, times):
        rng = self.rng
        yesterday = self.moment(1).replace(hour=18, minute=0)
        if deal.target in ROT:
            stage = deal.target
            if deal.rotting:
                touch_days = rng.randint(ROT[stage] + 1, max(ROT[stage] + 1, days["qualify"] - 1))
            else:
                touch_days = rng.randint(1, max(1, min((ROT[stage] - 4) * 5 // 7, days["qualify"] - 1)))
            touch = self.moment(touch_days)
            if touch <= times["qualify"]:
                touch = self.between(times["qualify"], times["qualify"] + datetime.timedelta(hours=6))
            moments = sorted(self.between(times["qualify"], touch) for _ in range(rng.randint(0, 2)))
            for moment in moments + [touch]:
                self.at(moment, self.log_done, deal, None)
            overdue = deal.rotting or rng.random() < 0.25
            due = self.due(-rng.randint(1, 6) if overdue else rng.randint(1, 14))
            if not (deal.rotting and rng.random() < 0.3):
                self.at(touch + datetime.timedelta(minutes=5), self.log_task, deal, None, due)
            return
        end = times.get("won") or times.get("lost") or times["qualify"]
        for _ in range(rng.randint(1, 2)):
            self.at(self.between(times["qualify"], end), self.log_done, deal, None)
        if deal.target == "fulfill":
            kickoff = self.between(times["won"], yesterday)
            self.at(kickoff, self.log_note, deal, "meeting", "Kick-off meeting with {first}",
                    "Delivery plan and contacts agreed.")
            due = self.due(rng.randint(1, 12))
            self.at(kickoff + datetime.timedelta(minutes=5), self.log_task, deal, "fulfill", due)
        elif deal.invoice_state == "overdue":
            due = times["invoice"].replace(hour=9, minute=0) + datetime.timedelta(days=31)
            self.at(self.between(due, yesterday), self.log_reminder, deal)
        elif deal.invoice_state in ("paid", "paid_long_ago"):
            self.at(times["paid"] + datetime.timedelta(minutes=10), self.log_note, deal, "note",
                    "Payment received – thanked {first}", "")

    # ----- deal actions -----------------------------------------------------------------------
    def context(self, deal):
        person = deal.person
        opp = Opportunity.get_or_none(Opportunity.id == deal.opp_id) if deal.opp_id else None
        quote = opp.quote_in("draft", "active", "won", "lost") if opp else None
        invoice = Invoice.get_or_none(Invoice.id == deal.invoice_id) if deal.invoice_id else None
        return {"first": _given_names(person["name"])[0], "city": deal.place["city"] or "their office",
                "quote": quote.display_number if quote else "", "invoice": invoice.number if invoice else ""}

    def record(self, deal):
        return deal.opp if deal.opp_id else Lead.get_by_id(deal.lead.id)

    def log_done(self, deal, stage):
        record = self.record(deal)
        stage = stage or record.stage
        kind, subject, body = self.rng.choice(DONE[stage])
        ctx = self.context(deal)
        Activity.add(deal.owner, record, kind=kind, subject=subject.format(**ctx), body=body.format(**ctx),
                     done=True)

    def log_note(self, deal, kind, subject, body):
        ctx = self.context(deal)
        Activity.add(deal.owner, self.record(deal), kind=kind, subject=subject.format(**ctx), body=body,
                     done=True)

    def log_task(self, deal, stage, due):
        record = self.record(deal)
        stage = stage or record.stage
        subject = self.rng.choice(TASKS[stage]).format(**self.context(deal))
        Activity.add(deal.owner, record, kind="task", subject=subject, due_date=due, done=False)

    def log_reminder(self, deal):
        invoice = Invoice.get_by_id(deal.invoice_id)
        Activity.add(self.admin, deal.opp, kind="task", subject=f"Send payment reminder for {invoice.number}",
                     body=f"Due on {invoice.due_date}; no payment received yet.",
                     due_date=self.when.date() + datetime.timedelta(days=2), done=False)

    def create_deal_lead(self, deal):
        rng, person = self.rng, deal.person
        company = deal.place["company"] if deal.place["account"] is None else deal.place["account"].name
        missing = deal.qualify_inputs
        deal.lead = Lead.create_lead(
            deal.owner, name=person["name"], company=company, job_title=person["job_title"], email=person["email"],
            phone=person["phone"], source=rng.choice(SOURCES), topic=deal.topic,
            budget_amount=None if "budget_amount" in missing else deal.budget,
            purchase_timeframe=None if "purchase_timeframe" in missing else deal.timeframe,
            decision_maker_known=rng.random() < 0.6, rating=rng.choice(("hot", "warm", "warm", "cold")),
            owner=deal.owner)

    def qualify(self, deal):
        lead = Lead.get_by_id(deal.lead.id)
        matches = lead.duplicate_matches(deal.owner)
        inputs = {kind: matches[kind][0].id for kind in ("account", "contact") if matches[kind]}
        if deal.qualify_inputs:
            inputs.update(budget_amount=str(deal.budget), purchase_timeframe=deal.timeframe)
        if self.rng.random() < 0.3:
            opp = lead.move_to(deal.owner, "develop", **inputs).record
        else:
            opp = lead.qualify(deal.owner, **inputs)
        deal.opp_id = opp.id
        if deal.no_lines:
            opp.update_fields(deal.owner, estimated_close_date=deal.close_date)
            return
        foreign = deal.place["foreign"]
        for product, quantity, discount in deal.lines:
            extra = {"tax_rate": "0"} if foreign and not product.tax_exemption else {}
            opp.add_line(deal.owner, product=product.id, quantity=str(quantity), discount_pct=str(discount), **extra)
        opp.update_fields(deal.owner, revenue_mode="calculated", estimated_close_date=deal.close_date)

    def do_propose(self, deal):
        deal.opp.move_to(deal.owner, "propose")

    def sent_until(self, deal):
        """How long a quote sent now is valid: the usual validity, and for a deal the story leaves in Close,
        at least two weeks beyond the reference date (it is still the customer's to accept)."""
        valid_until = self.past(self.when) + datetime.timedelta(days=self.validity)
        return max(valid_until, self.today + datetime.timedelta(days=14)) if deal.target == "close" else valid_until

    def do_close(self, deal):
        opp = deal.opp
        opp.move_to(deal.owner, "close", activate_quote="1", valid_until=self.sent_until(deal))
        if deal.target == "close" and self.rng.random() < 0.3:
            opp.update_fields(deal.owner, probability=self.rng.choice((70, 90)))

    def do_revise(self, deal):
        opp = deal.opp
        opp.move_to(deal.owner, "propose")
        draft = opp.quote_in("draft")
        for line in draft.line_rows():
            draft.update_line(deal.owner, line.id, discount_pct="8")
        Activity.add(deal.owner, opp, kind="call", subject="Customer asks for a better price",
                     body="Agreed 8 % on all lines in a new revision of the quote.", done=True)

    def do_reclose(self, deal):
        deal.opp.move_to(deal.owner, "close", activate_quote="1", valid_until=self.sent_until(deal))

    def do_won(self, deal):
        opp = deal.opp
        active = opp.quote_in("active")
        opp.move_to(deal.owner, "fulfill", actual_revenue=active.net_total, actual_close_date=self.past(self.when))

    def do_invoice(self, deal):
        opp = deal.opp
        day = self.past(self.when)
        period = self.service_period(deal, day)
        if period:  # a subscription's invoice states the period it is for (its time of supply)
            draft = Invoice.create_from_order(self.admin, opp.order)
            draft.update_fields(self.admin, period_start=period[0].isoformat(), period_end=period[1].isoformat())
        opp.move_to(self.admin, "invoiced", issue_date=day)
        deal.invoice_id = opp.order.invoice.id

    def service_period(self, deal, day):
        """The period a subscription deal is invoiced for: next year's maintenance renewal covers that
        calendar year; a subscription or hosting deal runs from the invoice day for its term (12 months,
        or the months of hosting bought); other deals have none."""
        topic, items = deal.bundle
        first_sku = items[0][0]
        if first_sku == "SW-SUP-STD":
            year = self.today.year + 1
            return datetime.date(year, 1, 1), datetime.date(year, 12, 31)
        if first_sku in ("SW-CRM-USR", "SW-SUP-PRM", "SV-HOST-M"):
            months = 12
            if first_sku == "SV-HOST-M":
                months = next(int(quantity) for product, quantity, _ in deal.lines if product.sku == first_sku)
            return day, _months_later(day, months) - datetime.timedelta(days=1)
        return None

    def do_paid(self, deal):
        Invoice.get_by_id(deal.invoice_id).mark_paid(self.admin, paid_on=self.past(self.when))

    def do_reissue(self, deal):
        invoice = Invoice.get_by_id(deal.invoice_id)
        invoice.cancel(self.admin, reason="Purchase order number missing; replaced by a corrected invoice.")
        order = Order.get_by_id(invoice.order_id)
        replacement = Invoice.create_from_order(self.admin, order)
        replacement.issue(self.admin, issue_date=self.past(self.when))
        deal.invoice_id = replacement.id

    def do_cancel(self, deal):
        deal.opp.order.cancel(deal.owner, reason="The customer's parent company froze all IT investments; "
                                                 "canceled before delivery.")

    def do_lost(self, deal):
        _, reason, competitor, note = deal.lost
        opp = deal.opp
        opp.move_to(deal.owner, "lost", close_reason=reason, competitor=competitor, close_note=note)
        Opportunity.update(actual_close_date=self.past(self.when)).where(Opportunity.id == opp.id).execute()

    # ----- leads that stay leads ----------------------------------------------------------------
    def schedule_open_leads(self):
        rng = self.rng
        for spec in OPEN_LEADS:
            (name, company, title, email, phone, source, topic, budget, timeframe, decider, rating, owner,
             created, private) = spec
            deal = _Deal(owner=self.users[owner], person={"name": name}, place={"city": ""})
            created_at = self.moment(created)
            self.at(created_at, self.create_open_lead, deal, dict(
                name=name, company=company, job_title=title, email=email, phone=phone, source=source, topic=topic,
                budget_amount=budget, purchase_timeframe=timeframe, decision_maker_known=decider, rating=rating,
                owner=self.users[owner], private_buyer=private))
            yesterday = self.moment(1).replace(hour=18, minute=0)
            moment = created_at
            if created > 2 and rng.random() < 0.6:
                moment = self.between(created_at, yesterday)
                self.at(moment, self.log_done, deal, "lead")
            due = self.due(rng.choice((-4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7)))
            self.at(moment + datetime.timedelta(minutes=5), self.log_task, deal, "lead", due)

    def create_open_lead(self, deal, values):
        deal.lead = Lead.create_lead(deal.owner, **values)

    def schedule_disqualified_leads(self):
        for name, company, email, source, topic, reason, note, owner, created, closed in DISQUALIFIED_LEADS:
            deal = _Deal(owner=self.users[owner], person={"name": name}, place={"city": ""})
            start, end = self.moment(created), self.moment(closed)
            self.at(start, self.create_open_lead, deal, dict(
                name=name, company=company, email=email, source=source, topic=topic, rating="cold",
                owner=self.users[owner]))
            self.at(self.between(start, end), self.log_done, deal, "lead")
            self.at(end, self.disqualify, deal, reason, note)

    def disqualify(self, deal, reason, note):
        Lead.get_by_id(deal.lead.id).move_to(deal.owner, "lost", reason=reason, note=note)

    # ----- finishing ------------------------------------------------------------------------------
    def finish_quotes(self):
        """Drafts still being written are valid from the reference date on (sent quotes keep the date their
        frozen PDF states)."""
        Quote.update(valid_until=self.today).where(
            (Quote.status == "draft") & (Quote.valid_until < self.today)).execute()
