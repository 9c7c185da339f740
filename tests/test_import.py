"""Imports from CSV, XLSX and vCard: mapping guesses, preview checks, duplicates, modes, chunks, HTTP flow."""
import csv
import io
import os

import pytest

from builders import make_lead
from clients import PASSWORD, HtmxClient
from models import Account, Contact, HistoryEvent, ImportJob, ImportResult, Lead, Product, User, db
from models.imports import FileProblem, guess_mapping
from models.vcard import iter_cards


def _job(user, directory, content, filename="people.csv", kind="lead"):
    """An import job for `content` (bytes or text) as if uploaded."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(str(directory), "upload.part")
    with open(path, "wb") as fh:
        fh.write(content.encode("utf-8") if isinstance(content, str) else content)
    return ImportJob.create_from_upload(user, kind, path, filename, str(directory))


def _run(job, directory, policy="skip", mode="valid", chunk_rows=1000):
    job.set_mapping(job.kind, job.mapping)
    assert job.start(job.owner, policy, mode)
    job.run_all(str(directory), chunk_rows=chunk_rows)
    return ImportJob.get_by_id(job.id)


def _outcomes(job):
    return {r.row: (r.outcome, r.message) for r in ImportResult.select().where(ImportResult.job == job.id)}


LEADS_CSV = ("Name,Company,E-Mail,Phone,Budget,Notes\n"
             "Anna Berg,Nordwind GmbH,anna@nordwind.example,+49 40 123,12000,Met at fair\n"
             "Ben Kurz,Kurz AG,ben@kurz.example,,5000.50,\n"
             "Cleo Dahl,,cleo@dahl.example,040 55 66,,\"Two\nlines\"\n")


# --- mapping guesses -------------------------------------------------------------------------

def test_mapping_is_guessed_from_header_synonyms():
    assert guess_mapping("lead", ["Vorname", "Nachname", "Firma", "E-Mail-Adresse", "Tel.", "Budget", "Bemerkung"]) == \
        ["first_name", "last_name", "company", "email", "phone", "budget_amount", "notes"]
    assert guess_mapping("contact", ["Full Name", "Company", "Work Email", "Mobile", "PLZ", "Ort", "Land"]) == \
        ["name", "company", "email", "phone", "postal_code", "city", "country"]
    assert guess_mapping("account", ["Firma", "USt-IdNr.", "Website", "Straße", "Zip"]) == \
        ["name", "vat_id", "website", "street", "postal_code"]
    assert guess_mapping("product", ["SKU", "Bezeichnung", "Price", "MwSt", "Einheit", "Colour"]) == \
        ["sku", "name", "list_price", "tax_rate", "unit", ""]
    # each field once: the second email-like column stays unmapped
    assert guess_mapping("lead", ["Email", "E-Mail"]) == ["email", ""]


def test_mapping_must_cover_required_fields_and_use_each_field_once(database, seller, tmp_path):
    from models import ValidationError
    job = _job(seller, tmp_path, LEADS_CSV)
    with pytest.raises(ValidationError) as exc:
        job.set_mapping("lead", ["", "company", "email", "", "", ""])
    assert "Name" in exc.value.fields["mapping"]
    with pytest.raises(ValidationError) as exc:
        job.set_mapping("lead", ["name", "email", "email", "", "", ""])
    assert "already taken" in exc.value.fields["col2"]
    job.set_mapping("lead", ["name", "", "email", "", "", ""])
    assert ImportJob.get_by_id(job.id).status == "mapped"


# --- preview ---------------------------------------------------------------------------------

def test_preview_shows_the_models_validation_errors_per_row(database, seller, tmp_path):
    content = ("Name,Email,Budget,Rating,Timeframe\n"
               "Good Row,good@example.com,100,hot,this year\n"
               ",nobody@example.com,50,,\n"
               "Bad Mail,not-an-email,-5,lukewarm,someday\n")
    job = _job(seller, tmp_path, content)
    job.set_mapping("lead", job.mapping)
    rows = {o.number: o for o in job.preview()}
    assert rows[2].errors == {} and rows[2].values["source"] == "import"
    assert rows[3].errors == {"name": "This field is required."}
    assert set(rows[4].errors) == {"email", "budget_amount", "rating", "purchase_timeframe"}
    assert rows[4].errors["budget_amount"] == "Must be at least 0."
    assert Lead.select().count() == 0 and ImportResult.select().count() == 0  # a preview writes nothing


def test_preview_flags_duplicates_in_the_database_and_in_the_file(database, seller, tmp_path):
    make_lead(seller, email="anna@nordwind.example")
    content = LEADS_CSV + "Anna Again,,ANNA@nordwind.example,,,\nBen Twice,,ben@kurz.example,,,\n"
    job = _job(seller, tmp_path, content)
    job.set_mapping("lead", job.mapping)
    rows = {o.number: o for o in job.preview()}
    assert rows[2].duplicate is not None and rows[2].duplicate_row is None
    assert rows[5].duplicate is not None  # same email, other case
    assert rows[6].duplicate is None and rows[6].duplicate_row == 3
    assert not rows[3].is_duplicate and not rows[4].is_duplicate


# --- running, duplicate policies, modes ------------------------------------------------------

def test_imported_leads_land_in_qualify_owned_by_the_importer_with_history(database, seller, tmp_path):
    job = _run(_job(seller, tmp_path, LEADS_CSV), tmp_path)
    assert job.status == "done" and job.created_count == 3
    leads = list(Lead.select().order_by(Lead.id))
    assert [l.name for l in leads] == ["Anna Berg", "Ben Kurz", "Cleo Dahl"]
    assert all(l.status == "open" and l.source == "import" and l.owner_id == seller.id for l in leads)
    assert leads[1].budget_amount == Lead.budget_amount.python_value(500050)
    assert leads[2].notes == "Two\nlines"
    events = list(HistoryEvent.select().where(HistoryEvent.record_type == "lead"))
    assert len(events) == 3 and {e.action for e in events} == {"create"}
    assert {e.to_stage for e in events} == {"qualify"} and {e.actor_id for e in events} == {seller.id}
    assert "people.csv (row 2)" in events[0].note
    assert not os.path.exists(job.path(str(tmp_path)))  # the uploaded file is gone once done


@pytest.mark.parametrize("policy", ["skip", "update", "create"])
def test_duplicate_policies_for_leads(database, seller, tmp_path, policy):
    existing = make_lead(seller, name="Anna Old", email="anna@nordwind.example", phone="")
    content = LEADS_CSV + "Ben Kurz Jr,,ben@kurz.example,+49 1,,\n"
    job = _run(_job(seller, tmp_path, content), tmp_path, policy=policy)
    outcomes = _outcomes(job)
    anna = Lead.get_by_id(existing.id)
    if policy == "skip":
        assert outcomes[2][0] == "skipped" and f"#{existing.id}" in outcomes[2][1]
        assert outcomes[5] == ("skipped", "Duplicate: Same as row 3 of this file")
        assert anna.name == "Anna Old" and Lead.select().count() == 3
    elif policy == "update":
        assert outcomes[2][0] == "updated"
        assert anna.name == "Anna Berg" and anna.phone == "+49 40 123" and anna.version == 2
        assert HistoryEvent.select().where((HistoryEvent.record_id == anna.id) & (HistoryEvent.action == "update")).count() == 1
        assert outcomes[5][0] == "updated"  # merged into the lead created from row 3
        ben = Lead.get(Lead.email == "ben@kurz.example")
        assert ben.name == "Ben Kurz Jr" and ben.phone == "+49 1" and Lead.select().count() == 3
    else:
        assert outcomes[2][0] == "created" and outcomes[5][0] == "created"
        assert Lead.select().where(Lead.email == "anna@nordwind.example").count() == 2
        assert Lead.select().count() == 5
    assert (job.created_count, job.updated_count, job.skipped_count) == {
        "skip": (2, 0, 2), "update": (2, 2, 0), "create": (4, 0, 0)}[policy]


def test_in_file_duplicates_across_chunks(database, seller, tmp_path):
    rows = "".join(f"Person {i},p{i % 3}@example.com\n" for i in range(7))
    job = _run(_job(seller, tmp_path, "Name,Email\n" + rows), tmp_path, chunk_rows=2)
    assert job.created_count == 3 and job.skipped_count == 4
    assert _outcomes(job)[5] == ("skipped", f"Duplicate: Same as row 2 of this file (lead #{Lead.get(Lead.email == 'p0@example.com').id})")


def test_accounts_are_duplicates_by_name_in_any_case_or_by_vat_id(database, seller, tmp_path):
    nordwind = Account.create_account(seller, name="Nordwind GmbH", vat_id="DE 123 456 789")
    content = ("Company,VAT,City\nNORDWIND gmbh ,,Hamburg\nOther Name,DE123456789,Bremen\nFresh AG,DE999,Kiel\n"
               "fresh ag,,Kiel\n")
    job = _run(_job(seller, tmp_path, content, kind="account"), tmp_path, policy="skip")
    outcomes = _outcomes(job)
    assert outcomes[2][0] == outcomes[3][0] == "skipped" and f"#{nordwind.id}" in outcomes[3][1]
    assert outcomes[4][0] == "created" and outcomes[5][0] == "skipped"
    assert Account.select().count() == 2 and Account.get(Account.name == "Fresh AG").owner_id == seller.id


def test_products_are_duplicates_by_sku_and_can_be_updated_but_not_created_twice(database, seller, tmp_path):
    from models import ValidationError
    Product.create_product(seller, sku="SC-1", name="Scanner", list_price="100")
    content = "SKU;Bezeichnung;Preis;MwSt\nSC-1;Scanner Pro;149,90;19\nLP-2;Label printer;349;7\n"
    job = _job(seller, tmp_path, content, kind="product")
    job.set_mapping("product", job.mapping)
    with pytest.raises(ValidationError):
        job.start(seller, "create", "valid")
    job.start(seller, "update", "valid")
    job = ImportJob.get_by_id(job.id).run_all(str(tmp_path))
    assert (job.created_count, job.updated_count) == (1, 1)
    scanner = Product.get(Product.sku == "SC-1")
    assert str(scanner.list_price) == "149.90" and scanner.name == "Scanner Pro"
    printer = Product.get(Product.sku == "LP-2")
    assert printer.unit == "piece" and str(printer.tax_rate) == "7.00"


def test_products_import_their_vat_exemption_which_needs_a_zero_rate(database, seller, tmp_path):
    content = ("SKU;Bezeichnung;Preis;MwSt;Steuerbefreiung\n"
               "EXM-1;Exam fee;250;0;§ 4 Nr. 21 UStG\nEXM-2;Exam fee, taxed by mistake;250;19;§ 4 Nr. 21 UStG\n"
               "EXM-3;Exam fee, no rate given;250;;§ 4 Nr. 21 UStG\n")
    job = _job(seller, tmp_path, content, kind="product")
    assert job.mapping[4] == "tax_exemption"
    job = _run(job, tmp_path)
    assert job.created_count == 2
    for sku in ("EXM-1", "EXM-3"):  # a ground without a rate is an exempt item: 0 %
        exam = Product.get(Product.sku == sku)
        assert (str(exam.tax_rate), exam.tax_exemption) == ("0.00", "§ 4 Nr. 21 UStG")
    outcome, message = _outcomes(job)[3]
    assert outcome == "invalid" and "Tax exemption: Only an item without VAT can be exempt" in message
    goods = _run(_job(seller, tmp_path, "SKU;Name;Price;Goods or service\nSRV-1;Server;8950;Goods\n"
                      "CON-1;Consulting;145;service\nX-1;Thing;1;software\n", kind="product"), tmp_path)
    assert [Product.get(Product.sku == sku).supply for sku in ("SRV-1", "CON-1")] == ["goods", "services"]
    assert "Supply: Choose one of: services, goods." in _outcomes(goods)[4][1]
    # updating only the ground of an existing exempt product
    update = _job(seller, tmp_path, "SKU;Bezeichnung;Preis;Steuerbefreiung\nEXM-1;Exam fee;250;§ 4 Nr. 22 UStG\n",
                  kind="product")
    assert _run(update, tmp_path, policy="update").updated_count == 1
    assert Product.get(Product.sku == "EXM-1").tax_exemption == "§ 4 Nr. 22 UStG"


def test_all_or_nothing_writes_nothing_when_one_row_is_invalid(database, seller, tmp_path):
    content = LEADS_CSV + "Broken,,not-an-email,,,\n" + "".join(f"P{i},,p{i}@example.com,,,\n" for i in range(5))
    before = (Lead.select().count(), HistoryEvent.select().count())
    job = _run(_job(seller, tmp_path, content), tmp_path, mode="all", chunk_rows=3)
    assert job.status == "failed" and job.created_count == 0 and job.invalid_count == 1
    assert "Nothing was imported" in job.message
    assert (Lead.select().count(), HistoryEvent.select().count()) == before
    assert _outcomes(job) == {5: ("invalid", "Email: Enter a valid email address, such as name@example.com.")}


def test_all_or_nothing_imports_everything_when_all_rows_are_valid(database, seller, tmp_path):
    job = _run(_job(seller, tmp_path, LEADS_CSV), tmp_path, mode="all", chunk_rows=2)
    assert job.status == "done" and job.created_count == 3 and Lead.select().count() == 3


def test_valid_rows_mode_imports_the_valid_rows_and_reports_the_others(database, seller, tmp_path):
    content = LEADS_CSV + "Broken,,not-an-email,,-3,\n"
    job = _run(_job(seller, tmp_path, content), tmp_path, mode="valid")
    assert job.status == "done" and (job.created_count, job.invalid_count) == (3, 1)
    report = list(csv.reader(io.StringIO("".join(job.report_lines()))))
    assert report[0] == ["row", "outcome", "record", "record_id", "label", "reason"]
    assert report[4][:2] == ["5", "invalid"] and "Budget amount: Must be at least 0." in report[4][5]
    assert [r[1] for r in report[1:4]] == ["created"] * 3


def test_chunks_are_not_written_twice_by_two_workers(database, seller, tmp_path):
    job = _job(seller, tmp_path, "Name,Email\n" + "".join(f"P{i},p{i}@example.com\n" for i in range(5)))
    job.set_mapping("lead", job.mapping)
    job.start(seller, "skip", "valid")
    first, second = ImportJob.get_by_id(job.id), ImportJob.get_by_id(job.id)  # two workers read the same job
    assert first.step(str(tmp_path), chunk_rows=2) is True
    assert second.step(str(tmp_path), chunk_rows=2) is False  # its position is stale: nothing written
    assert Lead.select().count() == 2
    ImportJob.get_by_id(job.id).run_all(str(tmp_path), chunk_rows=2)
    assert Lead.select().count() == 5 and ImportResult.select().count() == 5


# --- file formats ----------------------------------------------------------------------------

@pytest.mark.parametrize("encoding,delimiter", [("utf-8", ","), ("utf-8-sig", ";"), ("cp1252", ";"), ("utf-8", "\t")])
def test_encodings_and_delimiters(database, seller, tmp_path, encoding, delimiter):
    rows = [["Name", "Firma", "E-Mail"], ["Jürgen Müller", "Bäckerei Öztürk & Söhne", "jm@example.com"],
            ["Zoë Façade", "Café \"Crème\"", "zf@example.com"]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    job = _job(seller, tmp_path, buffer.getvalue().encode(encoding), filename="leute.csv")
    assert job.delimiter == delimiter and job.header == ["Name", "Firma", "E-Mail"]
    assert job.encoding.startswith("cp1252" if encoding == "cp1252" else "utf-8")
    _run(job, tmp_path)
    assert [(l.name, l.company) for l in Lead.select().order_by(Lead.id)] == [
        ("Jürgen Müller", "Bäckerei Öztürk & Söhne"), ("Zoë Façade", 'Café "Crème"')]


def test_xlsx_first_sheet_is_imported(database, seller, tmp_path):
    import datetime

    from openpyxl import Workbook
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["SKU", "Product name", "List price", "Tax rate", "Active", "Since"])
    sheet.append(["X-1", "Dock", 199.9, 19, True, datetime.date(2026, 1, 2)])
    sheet.append(["X-2", "Cable", 12, 7, False, None])
    sheet.append([None, None, None, None, None, None])
    sheet.append(["X-3", "Hub", "abc", 19, True, None])
    path = tmp_path / "catalog.xlsx"
    workbook.save(path)
    job = _job(seller, tmp_path / "imports", path.read_bytes(), filename="catalog.xlsx", kind="product")
    assert job.source_format == "xlsx" and job.mapping[:5] == ["sku", "name", "list_price", "tax_rate", "active"]
    job = _run(job, tmp_path / "imports")
    assert (job.created_count, job.invalid_count) == (2, 1)
    dock = Product.get(Product.sku == "X-1")
    assert str(dock.list_price) == "199.90" and dock.active is True
    assert Product.get(Product.sku == "X-2").active is False
    assert _outcomes(job)[5][0] == "invalid"


VCARD_FOLDED = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Dr. Émilie Çelik-Øster\r\nN:Çelik-Øster;Émilie;;Dr.;\r\n"
    "ORG:Großhandel Süd GmbH;Einkauf\r\nTITLE:Head of\r\n  Purchasing\r\n"
    "EMAIL;TYPE=work:emilie@sued.example\r\nEMAIL;TYPE=home:emilie@home.example\r\n"
    "EMAIL:e.c@other.example\r\nTEL;TYPE=work:+49 89 1234\r\nTEL;TYPE=cell:+49 170 555\r\n"
    "ADR;TYPE=work:;;Hauptstraße 1\\, Hof;München;Bayern;80331;Deutschland\r\n"
    "NOTE:Likes\\, tea\\nand cake\\; really\r\n"
    "PHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8M\r\n"
    " Cg0LCQkNEQ0ODxAQERAKDBITEhAPEBIQEBD/2wBDAQMDAwQDBAgEBAgQCwkLEBAQEBAQEBAQEBAQ\r\n"
    "END:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:小林 健\r\nEMAIL:ken@kobayashi.example\r\nTEL;VALUE=uri:tel:+81-3-1234-5678\r\nEND:VCARD\r\n")
VCARD_21_QP = (
    "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=ISO-8859-1;ENCODING=QUOTED-PRINTABLE:M=FCller;J=FCrgen\r\n"
    "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen M=C3=BCller\r\n"
    "ORG:B=E4ckerei\r\n"
    "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:Erste Zeile=0D=0AZweite Zeile mit einem sehr langen Te=\r\n"
    "xt, der umbrochen ist\r\n"
    "TEL;WORK;VOICE:+49 30 111\r\nEMAIL;INTERNET;PREF:jm@baeckerei.example\r\n"
    "PHOTO;JPEG;ENCODING=BASE64:\r\n /9j/4AAQSkZJRgABAQEASABIAAD\r\n 2wBDAAMCAgICAgMCAgID\r\n\r\n"
    "END:VCARD\r\n")


def test_vcard_country_names_before_two_letters():
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\nADR:;;1 Main Street;London;;W1 1AA;UK\r\nEND:VCARD\r\n"
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:B\r\nADR:;;Ring 2;Wien;;1010;at\r\nEND:VCARD\r\n")
    assert [c["Country"] for c, _ in iter_cards(io.BytesIO(card.encode()))] == ["GB", "AT"]  # UK is no ISO code
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:C\r\nADR:;;King Fahd Road 1;Riyadh;;12271;Saudi Arabia\r\n"
            "END:VCARD\r\nBEGIN:VCARD\r\nVERSION:3.0\r\nFN:D\r\nADR:;;Istiklal 5;Istanbul;;34430;Türkei\r\n"
            "END:VCARD\r\n")
    assert [c["Country"] for c, _ in iter_cards(io.BytesIO(card.encode()))] == ["SA", "TR"]  # any country's name


def test_vcard_parser_unfolds_decodes_and_ignores_photos():
    cards = [card for card, _ in iter_cards(io.BytesIO(VCARD_FOLDED.encode("utf-8")))]
    emilie, ken = cards
    assert emilie["Full name"] == "Dr. Émilie Çelik-Øster" and emilie["Company"] == "Großhandel Süd GmbH"
    assert emilie["Job title"] == "Head of Purchasing"
    assert emilie["Email"] == "emilie@sued.example" and emilie["Phone"] == "+49 89 1234"
    assert (emilie["Street"], emilie["Postal code"], emilie["City"], emilie["Country"]) == \
        ("Hauptstraße 1, Hof", "80331", "München", "DE")
    assert emilie["Notes"].startswith("Likes, tea\nand cake; really")
    assert "Other emails: emilie@home.example, e.c@other.example" in emilie["Notes"]
    assert "Other phones: +49 170 555" in emilie["Notes"]
    assert not any("9j" in value for value in emilie.values())
    assert ken == {"Full name": "小林 健", "Email": "ken@kobayashi.example", "Phone": "+81-3-1234-5678"}
    (jurgen, _), = list(iter_cards(io.BytesIO(VCARD_21_QP.encode("latin-1"))))
    assert jurgen["Full name"] == "Jürgen Müller" and jurgen["Last name"] == "Müller"
    assert jurgen["Company"] == "B=E4ckerei"  # not quoted-printable: left as written
    assert jurgen["Notes"] == "Erste Zeile\r\nZweite Zeile mit einem sehr langen Text, der umbrochen ist"
    assert jurgen["Phone"] == "+49 30 111" and jurgen["Email"] == "jm@baeckerei.example"


def test_vcard_import_into_contacts_with_preview_and_duplicates(database, seller, tmp_path):
    Contact.create_contact(seller, name="Ken K", email="ken@kobayashi.example")
    job = _job(seller, tmp_path, VCARD_FOLDED, filename="cards.vcf", kind="contact")
    assert job.source_format == "vcf"
    job.set_mapping("contact", job.mapping)
    rows = {o.number: o for o in job.preview()}
    assert rows[1].errors == {} and rows[2].duplicate is not None
    job = _run(job, tmp_path, policy="skip")
    assert (job.created_count, job.skipped_count) == (1, 1)
    emilie = Contact.get(Contact.email == "emilie@sued.example")
    assert emilie.name == "Dr. Émilie Çelik-Øster" and emilie.city == "München" and emilie.country == "DE"
    assert emilie.owner_id == seller.id and "Company: Großhandel Süd GmbH" in emilie.notes


def test_vcard_into_leads_and_not_into_products(database, seller, tmp_path):
    from models import ValidationError
    job = _run(_job(seller, tmp_path, VCARD_21_QP.encode("latin-1"), filename="old.vcf"), tmp_path)
    lead = Lead.get()
    assert job.created_count == 1 and lead.name == "Jürgen Müller" and lead.source == "import"
    assert lead.company == "B=E4ckerei" and lead.phone == "+49 30 111"
    with pytest.raises(ValidationError):
        _job(seller, tmp_path / "more", VCARD_21_QP.encode("latin-1"), filename="old.vcf", kind="product")


def test_contact_company_links_an_existing_account(database, seller, tmp_path):
    account = Account.create_account(seller, name="Nordwind GmbH")
    job = _run(_job(seller, tmp_path, "Name,Company\nDana,nordwind gmbh\n", kind="contact"), tmp_path)
    assert job.created_count == 1 and Contact.get().account_id == account.id


@pytest.mark.parametrize("content,filename,message", [
    (b"", "empty.csv", "The file is empty."),
    (b"\x00\x01\x02binary\x00stuff" * 10, "data.csv", "binary file"),
    (bytes(range(1, 32)) * 20, "noise.csv", "binary file"),
    (b"Name,Email\nA,a@example.com\n", "people.pdf", "Upload a .csv, .xlsx or .vcf file"),
    (b"Name,Email\n", "header.csv", "no rows"),
    (b"not a zip", "book.xlsx", "not an Excel workbook"),
    (b"PK\x03\x04garbage", "book.xlsx", "not a readable XLSX"),
    (b"hello", "cards.vcf", "BEGIN:VCARD"),
    (b"BEGIN:VCARD\nFN:Cut\n", "cut.vcf", "cut off"),
    (b"\xff\xfeN\x00a\x00", "utf16.csv", "UTF-16"),
])
def test_bad_files_are_refused_with_a_message(database, seller, tmp_path, content, filename, message):
    with pytest.raises(FileProblem) as exc:
        _job(seller, tmp_path / "imports", content, filename=filename)
    assert message in exc.value.message
    assert ImportJob.select().count() == 0
    assert os.listdir(tmp_path / "imports") == []  # nothing is left behind


# --- HTTP --------------------------------------------------------------------------------------

def _upload(client, content, filename, kind="lead"):
    data = {"kind": kind, "file": (io.BytesIO(content), filename), "csrf_token": client.token}
    return client.post("/imports", data=data, content_type="multipart/form-data")


def _run_http(client, job_id, mapping, policy="skip"):
    """Map, start (only the valid rows) and poll an uploaded import until its report; the report's HTML."""
    assert client.hx_post(f"/imports/{job_id}/mapping", mapping).status_code == 200
    assert client.hx_post(f"/imports/{job_id}/start", {"policy": policy, "mode": "valid"}).status_code == 200
    for _ in range(10):
        html = client.hx_post(f"/imports/{job_id}/step").get_data(as_text=True)
        if 'id="import-report"' in html:
            return html
    raise AssertionError("the import did not finish")


def test_http_flow_upload_map_preview_run_with_polling_and_report(app, logged_in, user):
    page = logged_in.get("/leads").get_data(as_text=True)
    assert 'href="/imports?kind=lead"' in page
    assert logged_in.get("/imports?kind=lead").status_code == 200
    content = ("Full name,Organisation,Mail,Telefon,Budget\n"
               "Anna Berg,Nordwind,anna@nordwind.example,+49 40 1,100\n"
               "Bad Budget,X,bad@example.com,,lots\n").encode()
    resp = _upload(logged_in, content, "leads.csv")
    assert resp.status_code == 303
    job_url = resp.headers["Location"]
    html = logged_in.get(job_url).get_data(as_text=True)
    assert 'id="import-mapping"' in html and '<option value="email" selected>' in html
    assert 'id="import-preview"' not in html
    job_id = int(job_url.rsplit("/", 1)[1])
    mapping = {"kind": "lead", "col0": "name", "col1": "company", "col2": "email", "col3": "phone", "col4": "budget_amount"}
    resp = logged_in.hx_post(f"/imports/{job_id}/mapping", mapping)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="import-preview"' in html
    assert 'data-preview-errors="1"' in html and "Enter a number such as 1250.50." in html
    resp = logged_in.hx_post(f"/imports/{job_id}/mapping", dict(mapping, col3="email"))
    assert resp.status_code == 422 and "already taken" in resp.get_data(as_text=True)
    logged_in.hx_post(f"/imports/{job_id}/mapping", mapping)
    resp = logged_in.hx_post(f"/imports/{job_id}/start", {"policy": "nope", "mode": "valid"})
    assert resp.status_code == 422 and "Choose what to do with duplicates." in resp.get_data(as_text=True)
    resp = logged_in.hx_post(f"/imports/{job_id}/start", {"policy": "skip", "mode": "valid"})
    html = resp.get_data(as_text=True)
    assert 'id="import-progress"' in html and f'hx-post="/imports/{job_id}/step"' in html
    for _ in range(10):
        html = logged_in.hx_post(f"/imports/{job_id}/step").get_data(as_text=True)
        if 'id="import-report"' in html:
            break
    assert 'id="import-report"' in html and 'data-count="created">1<' in html and 'data-count="invalid">1<' in html
    resp = logged_in.get(f"/imports/{job_id}/report.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert lines[1][:2] == ["2", "created"] and lines[2][:2] == ["3", "invalid"]
    with db.connection_context():
        lead = Lead.get()
        assert lead.owner_id == user.id and lead.source == "import" and lead.status == "open"
    board = logged_in.get("/board").get_data(as_text=True)
    assert f'data-record="lead:{lead.id}"' in board


def test_http_without_javascript_step_redirects(app, logged_in):
    resp = _upload(logged_in, b"Name\nSolo\n", "one.csv")
    job_url = resp.headers["Location"]
    job_id = int(job_url.rsplit("/", 1)[1])
    assert logged_in.form_post(f"/imports/{job_id}/mapping", {"kind": "lead", "col0": "name"}).status_code == 303
    assert logged_in.form_post(f"/imports/{job_id}/start", {"policy": "skip", "mode": "all"}).status_code == 303
    assert "<noscript>" in logged_in.get(job_url).get_data(as_text=True)
    for _ in range(3):
        assert logged_in.form_post(f"/imports/{job_id}/step").status_code == 303
    assert 'id="import-report"' in logged_in.get(job_url).get_data(as_text=True)


def test_changing_the_kind_guesses_the_mapping_again(app, logged_in):
    resp = _upload(logged_in, b"SKU,Name,Price\nA-1,Thing,5\n", "things.csv")
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    html = logged_in.hx_post(f"/imports/{job_id}/mapping", {"kind": "product"}).get_data(as_text=True)
    assert '<option value="sku" selected>' in html and '<option value="list_price" selected>' in html


@pytest.mark.parametrize("content,filename,status,message", [
    (b"", "empty.csv", 422, "The file is empty."),
    (b"\x00\x01binary\x00" * 50, "blob.csv", 422, "binary file"),
    (b"Name\nA\n", "people.exe", 415, "Upload a .csv, .xlsx or .vcf file"),
])
def test_http_bad_files_answer_4xx_with_the_message_at_the_field(app, logged_in, content, filename, status, message):
    resp = _upload(logged_in, content, filename)
    html = resp.get_data(as_text=True)
    assert resp.status_code == status and message in html and 'class="field has-error" data-field="file"' in html


def test_http_no_file_and_huge_file(app, logged_in):
    resp = logged_in.post("/imports", data={"kind": "lead", "csrf_token": logged_in.token},
                          content_type="multipart/form-data")
    assert resp.status_code == 400 and "Choose a file to upload." in resp.get_data(as_text=True)
    app.config["IMPORT_MAX_BYTES"] = 2 * 1024 * 1024
    big = b"Name,Email\n" + b"Someone,someone@example.com\n" * 120000  # 3.4 MB
    resp = _upload(logged_in, big, "big.csv")
    assert resp.status_code == 413 and "too large" in resp.get_data(as_text=True)
    with db.connection_context():
        assert ImportJob.select().count() == 0


def test_a_job_is_its_owners_only(app, logged_in, user):
    resp = _upload(logged_in, b"Name\nSolo\n", "one.csv")
    job_url = resp.headers["Location"]
    with db.connection_context():
        User.create_user("other@example.com", PASSWORD, "Other Seller", "seller")
        User.create_user("boss@example.com", PASSWORD, "Ada Admin", "admin")
    other = HtmxClient(app.test_client())
    other.login("other@example.com")
    assert other.get(job_url).status_code == 404
    assert other.get(job_url + "/report.csv").status_code == 404
    assert other.hx_post(job_url + "/start", {"policy": "skip", "mode": "valid"}).status_code == 404
    assert "one.csv" not in other.get("/imports").get_data(as_text=True)
    admin = HtmxClient(app.test_client())
    admin.login("boss@example.com")
    assert admin.get(job_url).status_code == 200


def test_a_seller_imports_records_they_own_and_teammates_see_them_read_only(app, logged_in, user):
    from models import Team
    with db.connection_context():
        team = Team.create(name="North")
        User.update(team=team).where(User.id == user.id).execute()
        User.create_user("sue@example.com", PASSWORD, "Sue Seller", "seller", team=team)
    mapping = {"kind": "lead", "col0": "name", "col1": "email"}
    resp = _upload(logged_in, b"Name,Email\nTeam Lead,tl@example.com\n", "t.csv")
    _run_http(logged_in, int(resp.headers["Location"].rsplit("/", 1)[1]), mapping, policy="update")
    with db.connection_context():
        lead = Lead.get(Lead.email == "tl@example.com")
        assert lead.owner_id == user.id
    sue = HtmxClient(app.test_client())
    sue.login("sue@example.com")
    # Sue imports the same email with "update": she may see the lead but not change it
    resp = _upload(sue, b"Name,Email\nRenamed,tl@example.com\n", "t2.csv")
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    _run_http(sue, job_id, mapping, policy="update")
    with db.connection_context():
        assert Lead.get_by_id(lead.id).name == "Team Lead"
        result = ImportResult.get(ImportResult.job == job_id)
        assert result.outcome == "skipped" and "may see but not change" in result.message


def test_http_vcard_upload_offers_people_only_and_guesses_the_mapping(app, logged_in):
    resp = _upload(logged_in, VCARD_FOLDED.encode("utf-8"), "cards.vcf", kind="contact")
    assert resp.status_code == 303
    html = logged_in.get(resp.headers["Location"]).get_data(as_text=True)
    assert "vCard" in html and '<option value="name" selected>' in html and '<option value="email" selected>' in html
    assert '<option value="product"' not in html and '<option value="lead"' in html
    resp = _upload(logged_in, VCARD_FOLDED.encode("utf-8"), "cards.vcf", kind="product")
    assert resp.status_code == 422 and "Choose leads or contacts for a vCard file." in resp.get_data(as_text=True)


def _upload_many(client, files, kind="lead"):
    data = {"kind": kind, "file": [(io.BytesIO(content), name) for name, content in files],
            "csrf_token": client.token}
    return client.post("/imports", data=data, content_type="multipart/form-data")


def test_a_folder_of_vcard_files_imports_as_one_job(app, logged_in, user):
    """Business cards arrive as one .vcf per person: several files become one import with one report,
    in the order given, UTF-8 (with a byte-order mark) and Windows-1252 files mixed, duplicates across
    files and against the database found."""
    with db.connection_context():
        Lead.create_lead(user, name="Ken K", email="ken@kobayashi.example")
    anna = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna Berg\r\nORG:Nordwind\r\nEMAIL:anna@nordwind.example\r\nEND:VCARD"
    files = [("emilie-and-ken.vcf", VCARD_FOLDED.encode("utf-8")),
             ("anna.vcf", b"\xef\xbb\xbf" + anna.encode("utf-8")),  # BOM, no final newline
             ("jurgen.VCF", VCARD_21_QP.encode("latin-1")),
             ("anna-again.vcf", anna.replace("Anna Berg", "Anna B.").encode("cp1252"))]
    resp = _upload_many(logged_in, files)
    assert resp.status_code == 303
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    page = logged_in.get(f"/imports/{job_id}").get_data(as_text=True)
    assert "emilie-and-ken.vcf and 3 more vCard files" in page
    with db.connection_context():
        job = ImportJob.get_by_id(job_id)
        assert job.source_format == "vcf" and job.kinds == ("lead", "contact")
        mapping = job.mapping
    html = _run_http(logged_in, job_id, {"kind": "lead", **{f"col{i}": m for i, m in enumerate(mapping)}})
    assert 'data-count="created">3<' in html and 'data-count="skipped">2<' in html
    report = list(csv.reader(io.StringIO(logged_in.get(f"/imports/{job_id}/report.csv").get_data(as_text=True))))
    assert [line[1] for line in report[1:]] == ["created", "skipped", "created", "created", "skipped"]
    with db.connection_context():
        names = {lead.name for lead in Lead.select()}
        assert names == {"Ken K", "Dr. Émilie Çelik-Øster", "Anna Berg", "Jürgen Müller"}
        assert ImportJob.get_by_id(job_id).filename.startswith("emilie-and-ken.vcf")
    assert not [n for n in os.listdir(os.path.join(app.config["INSTANCE_PATH"], "imports")) if n.endswith(".part")]


@pytest.mark.parametrize("files, message", [
    ([("a.vcf", b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"), ("people.csv", b"Name\nB\n")],
     "people.csv: several files at once can only be vCard (.vcf) files"),
    ([("a.vcf", b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"), ("notes.vcf", b"just some notes\n")],
     "notes.vcf is not a vCard file"),
    ([("a.vcf", b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"), ("w.vcf", "BEGIN:VCARD\r\n".encode("utf-16"))],
     "w.vcf is UTF-16 text"),
    ([("a.vcf", b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"), ("cut.vcf", b"BEGIN:VCARD\r\nFN:B\r\n")],
     "cut.vcf is cut off"),
    ([("cut.vcf", b"BEGIN:VCARD\r\nFN:B\r\n"), ("a.vcf", b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n")],
     "cut.vcf is cut off"),
])
def test_several_files_are_refused_naming_the_file_at_fault(app, logged_in, files, message):
    resp = _upload_many(logged_in, files)
    html = resp.get_data(as_text=True)
    assert resp.status_code in (415, 422) and message in html.replace("&#39;", "'")
    assert 'class="field has-error" data-field="file"' in html
    with db.connection_context():
        assert ImportJob.select().count() == 0
    leftovers = os.listdir(os.path.join(app.config["INSTANCE_PATH"], "imports"))
    assert leftovers == [], leftovers


def _stepped(job, directory, steps, mode, chunk_rows=2):
    job.set_mapping(job.kind, job.mapping)
    assert job.start(job.owner, "skip", mode)
    for _ in range(steps):
        job.step(str(directory), chunk_rows=chunk_rows)
    return ImportJob.get_by_id(job.id)


def test_cancel_before_the_start_and_while_checking_writes_nothing(database, seller, tmp_path):
    rows = "Name,Email\n" + "".join(f"Person {i},p{i}@example.com\n" for i in range(10))
    job = _job(seller, tmp_path, rows)
    assert os.path.exists(job.path(str(tmp_path)))
    assert job.cancel(str(tmp_path)) is True
    job = ImportJob.get_by_id(job.id)
    assert job.status == "cancelled" and job.message == "Cancelled: nothing was imported." and job.finished_at
    assert not os.path.exists(job.path(str(tmp_path))) and Lead.select().count() == 0
    assert job.cancel(str(tmp_path)) is False and job.start(seller, "skip", "valid") is False
    checking = _stepped(_job(seller, tmp_path / "b", rows), tmp_path / "b", 2, "all")
    assert checking.phase == "validate" and checking.may_cancel
    assert checking.cancel(str(tmp_path / "b")) and Lead.select().count() == 0 and HistoryEvent.select().count() == 0


def test_stopping_an_import_of_valid_rows_keeps_what_it_saved_and_says_so(database, seller, tmp_path):
    rows = "Name,Email\n" + "".join(f"Person {i},p{i}@example.com\n" for i in range(10))
    job = _stepped(_job(seller, tmp_path, rows), tmp_path, 2, "valid")
    assert job.created_count == 4 and job.may_cancel
    job.cancel(str(tmp_path))
    job = ImportJob.get_by_id(job.id)
    assert job.status == "cancelled" and Lead.select().count() == 4
    assert job.message.startswith("Stopped after 4 rows: the 4 imported and 0 updated before that stay")
    assert job.step(str(tmp_path)) is False and Lead.select().count() == 4  # a late poll does nothing


def test_an_all_or_nothing_import_cannot_stop_while_writing(database, seller, tmp_path):
    from models import NotAllowed
    rows = "Name,Email\n" + "".join(f"Person {i},p{i}@example.com\n" for i in range(10))
    job = _stepped(_job(seller, tmp_path, rows), tmp_path, 6, "all")  # 5 checking steps, then writing
    assert job.phase == "write" and job.status == "running" and not job.may_cancel
    with pytest.raises(NotAllowed):
        job.cancel(str(tmp_path))
    job.run_all(str(tmp_path))
    assert ImportJob.get_by_id(job.id).status == "done" and Lead.select().count() == 10


def test_abandoned_uploads_and_interrupted_upload_files_are_cleaned_up(database, seller, tmp_path):
    import datetime
    import time
    from models.base import now
    directory = str(tmp_path)
    old = _job(seller, tmp_path, "Name\nA\n")
    fresh = _job(seller, tmp_path, "Name\nB\n")
    stalled = _stepped(_job(seller, tmp_path, "Name\nC\nD\nE\n"), tmp_path, 1, "valid", chunk_rows=1)
    ImportJob.update(updated_at=now() - datetime.timedelta(days=8)).where(ImportJob.id == old.id).execute()
    ImportJob.update(updated_at=now() - datetime.timedelta(days=31)).where(ImportJob.id == stalled.id).execute()
    leftover = os.path.join(directory, "upload-0123456789abcdef.part")
    recent = os.path.join(directory, "upload-fedcba9876543210.part")
    for path in (leftover, recent):
        open(path, "wb").close()
    os.utime(leftover, (time.time() - 2 * 86400,) * 2)
    ImportJob.purge_abandoned(directory)
    old, fresh, stalled = (ImportJob.get_by_id(j.id) for j in (old, fresh, stalled))
    assert old.status == "cancelled" and old.message.startswith("Not started within 7 days")
    assert stalled.status == "cancelled" and stalled.message.startswith("Left unfinished for 30 days")
    assert fresh.status == "uploaded" and os.path.exists(fresh.path(directory))
    assert not os.path.exists(old.path(directory)) and not os.path.exists(stalled.path(directory))
    assert not os.path.exists(leftover) and os.path.exists(recent)
    assert Lead.select().count() == 1  # the stalled import's first chunk stays


def test_http_cancel_button_and_report(app, logged_in):
    resp = _upload(logged_in, b"Name\nSolo\nDuo\n", "two.csv")
    job_url = resp.headers["Location"]
    job_id = int(job_url.rsplit("/", 1)[1])
    html = logged_in.get(job_url).get_data(as_text=True)
    assert f'hx-post="/imports/{job_id}/cancel"' in html and "Cancel this import" in html
    html = logged_in.hx_post(f"/imports/{job_id}/cancel").get_data(as_text=True)
    assert 'id="import-report"' in html and "Import cancelled" in html and "Cancelled: nothing was imported." in html
    assert "/cancel" not in html
    assert logged_in.form_post(f"/imports/{job_id}/cancel").status_code == 303  # again: nothing to do
    assert "import-status-cancelled" in logged_in.get("/imports").get_data(as_text=True)


def test_xlsx_reader_gives_cells_as_typed(tmp_path):
    """The streaming reader (models/xlsx.py): texts shared and inline (rich text too), numbers with their
    digits, booleans, dates and date-times by their number format (1900 and 1904 systems), formulas'
    results, errors, empty cells and rows kept in place, only the first sheet, columns capped."""
    import datetime

    from openpyxl import Workbook as Book
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont

    from models.xlsx import Workbook, is_date_format, serial_to_text
    book = Book()
    sheet = book.active
    sheet.title = "Leads"
    sheet.append(["Name", "Since", "Budget", "Active", "Met at", "Share"])
    sheet.append(["Anna Berg", datetime.date(2026, 3, 31), 12000.5, True, datetime.datetime(2026, 4, 1, 9, 30), 0.1])
    sheet.append(["Ben", None, 7, False, None, None])
    sheet["A5"] = CellRichText(["Carl ", TextBlock(InlineFont(b=True), "Christensen")])
    sheet["C5"] = "=C2*2"
    sheet["D5"] = "#N/A"
    sheet["G5"] = "beyond the cap"
    sheet["B6"] = 45000
    sheet["B6"].number_format = "dd.mm.yyyy"
    sheet["C6"] = 45000
    sheet["C6"].number_format = '#,##0.00 "days"'
    book.create_sheet("Other")["A1"] = "not imported"
    path = tmp_path / "leads.xlsx"
    book.save(path)
    workbook = Workbook(str(path))
    rows = list(workbook.rows(max_columns=6))
    workbook.close()
    assert rows[0] == ["Name", "Since", "Budget", "Active", "Met at", "Share"]
    assert rows[1] == ["Anna Berg", "2026-03-31", "12000.5", "yes", "2026-04-01 09:30:00", "0.1"]
    assert rows[2] == ["Ben", "", "7", "no"]
    assert rows[3] == []  # an empty row keeps its place: row numbers stay those of the sheet
    assert rows[4][0] == "Carl Christensen" and rows[4][3] == "#N/A" and len(rows[4]) == 4
    assert rows[5] == ["", "2023-03-15", "45000"]
    assert is_date_format("yyyy-mm-dd hh:mm") and is_date_format("[$-409]mmm d, yyyy")
    assert not is_date_format('0.00 "days"') and not is_date_format("General") and not is_date_format("[Red]0.0")
    assert serial_to_text(0, date1904=True) == "1904-01-01" and serial_to_text(0.75) == "18:00:00"


def test_xlsx_over_the_row_cap_is_refused_and_leaves_no_file(database, seller, tmp_path, monkeypatch):
    from openpyxl import Workbook as Book

    import models.imports as imports
    book = Book(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Name", "Email"])
    for i in range(30):
        sheet.append([f"Person {i}", f"p{i}@example.com"])
    path = tmp_path / "people.xlsx"
    book.save(path)
    job = _job(seller, tmp_path / "a", path.read_bytes(), filename="people.xlsx")
    assert job.source_format == "xlsx" and len(job.sample) == 20
    monkeypatch.setattr(imports, "MAX_XLSX_ROWS", 29)
    with pytest.raises(FileProblem, match="at most 29 rows"):
        _job(seller, tmp_path / "b", path.read_bytes(), filename="people.xlsx")
    assert os.listdir(tmp_path / "b") == []


def _handmade_xlsx(path, sheet_xml, date1904=False):
    """An .xlsx as Excel writes it: shared strings (rich text, phonetic guides), styles with a custom date
    format, two sheets whose first tab is stored as sheet2.xml, namespace prefixes in the sheet."""
    import zipfile
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
        "xl/workbook.xml": f'<?xml version="1.0"?><workbook xmlns="{main}" xmlns:r="{rel}">'
                           f'<workbookPr date1904="{int(date1904)}"/><sheets><sheet name="Messe" sheetId="2" r:id="rId7"/>'
                           '<sheet name="Old" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                                      '<Relationship Id="rId1" Type="x" Target="worksheets/sheet1.xml"/>'
                                      '<Relationship Id="rId7" Type="x" Target="/xl/worksheets/sheet2.xml"/></Relationships>',
        "xl/sharedStrings.xml": f'<?xml version="1.0"?><sst xmlns="{main}" count="4" uniqueCount="4">'
                                '<si><t>Name</t></si><si><t xml:space="preserve">Met on </t></si>'
                                '<si><r><t>Jürgen </t></r><r><rPr><b/></rPr><t>Müller &amp; Söhne</t></r></si>'
                                '<si><t>山田</t><rPh sb="0" eb="2"><t>ヤマダ</t></rPh></si></sst>',
        "xl/styles.xml": f'<?xml version="1.0"?><styleSheet xmlns="{main}"><numFmts count="1">'
                         '<numFmt numFmtId="164" formatCode="dd/mm/yyyy;@"/></numFmts>'
                         '<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="4"/></cellXfs></styleSheet>',
        "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{main}"><sheetData><row r="1"><c r="A1" t="inlineStr">'
                                    '<is><t>wrong sheet</t></is></c></row></sheetData></worksheet>',
        "xl/worksheets/sheet2.xml": sheet_xml.replace("MAIN", main),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)


def test_xlsx_with_shared_strings_styles_and_the_first_tab(tmp_path):
    from models.xlsx import Workbook
    sheet = ('<x:worksheet xmlns:x="MAIN"><x:sheetData>'
             '<x:row r="1"><x:c r="A1" t="s"><x:v>0</x:v></x:c><x:c r="B1" t="s"><x:v>1</x:v></x:c>'
             '<x:c r="C1" t="inlineStr"><x:is><x:t>Amount</x:t></x:is></x:c></x:row>'
             '<x:row r="2"><x:c r="A2" t="s"><x:v>2</x:v></x:c><x:c r="B2" s="1"><x:v>46112</x:v></x:c>'
             '<x:c r="C2" s="2"><x:v>1234.5</x:v></x:c></x:row>'
             '<x:row r="4"><x:c r="A4" t="s"><x:v>3</x:v></x:c><x:c r="C4" t="str"><x:f>A4</x:f><x:v>山田</x:v></x:c>'
             '</x:row></x:sheetData></x:worksheet>')
    _handmade_xlsx(tmp_path / "a.xlsx", sheet)
    rows = list(Workbook(str(tmp_path / "a.xlsx")).rows())
    assert rows == [["Name", "Met on ", "Amount"], ["Jürgen Müller & Söhne", "2026-03-31", "1234.5"], [],
                    ["山田", "", "山田"]]
    _handmade_xlsx(tmp_path / "b.xlsx", sheet, date1904=True)
    assert list(Workbook(str(tmp_path / "b.xlsx")).rows())[1][1] == "2030-04-01"


@pytest.mark.parametrize("sheet, message", [
    ('<worksheet xmlns="MAIN"><sheetData><row><c t="s"><v>99</v></c></row></sheetData></worksheet>',
     "refers to a text the workbook does not have"),
    ('<worksheet xmlns="MAIN"><sheetData><row><c><v>1</v></c>', "could not be read"),
])
def test_damaged_xlsx_sheets_are_refused_with_a_message(database, seller, tmp_path, sheet, message):
    _handmade_xlsx(tmp_path / "bad.xlsx", sheet)
    with pytest.raises(FileProblem, match=message):
        _job(seller, tmp_path / "imports", (tmp_path / "bad.xlsx").read_bytes(), filename="bad.xlsx")
    assert os.listdir(tmp_path / "imports") == []


def test_line_breaks_in_single_line_fields_are_joined_not_refused(database, seller, tmp_path):
    """A two-line street in a vCard or an Alt+Enter in a spreadsheet cell imports; notes keep their lines."""
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Hanna Hof\r\nEMAIL:hanna@hof.example\r\n"
            "ADR;TYPE=work:;;Hauptstr. 1\\nHinterhaus;Berlin;;10115;Germany\r\nNOTE:First line\\nSecond line\r\n"
            "END:VCARD\r\n")
    job = _run(_job(seller, tmp_path / "a", card, filename="hanna.vcf", kind="contact"), tmp_path / "a", mode="all")
    assert job.created_count == 1 and job.invalid_count == 0
    hanna = Contact.get(Contact.email == "hanna@hof.example")
    assert hanna.street == "Hauptstr. 1, Hinterhaus" and hanna.notes.startswith("First line\nSecond line")
    sheet = 'Name,Company,Email\n"Ivo\nIvanov","Acme\r\nEurope GmbH",ivo@acme.example\n'
    _run(_job(seller, tmp_path / "b", sheet), tmp_path / "b", mode="all")
    ivo = Lead.get(Lead.email == "ivo@acme.example")
    assert (ivo.name, ivo.company) == ("Ivo, Ivanov", "Acme, Europe GmbH")


def test_a_step_or_mapping_that_read_the_job_before_a_cancel_changes_nothing(database, seller, tmp_path):
    """Two tabs, or a poll in flight: what was read before the cancel cannot revive or fail the job."""
    from models import NotAllowed
    rows = "Name,Email\n" + "".join(f"Person {i},p{i}@example.com\n" for i in range(10))
    running = _stepped(_job(seller, tmp_path, rows), tmp_path, 1, "valid")
    stale = ImportJob.get_by_id(running.id)
    ImportJob.get_by_id(running.id).cancel(str(tmp_path))  # another request cancels; the file is gone
    assert stale.step(str(tmp_path)) is True  # finds no file ...
    assert ImportJob.get_by_id(running.id).status == "cancelled"  # ... and leaves the cancel as it is
    mapped = _job(seller, tmp_path / "b", rows)
    mapped.set_mapping("lead", mapped.mapping)
    stale = ImportJob.get_by_id(mapped.id)
    ImportJob.get_by_id(mapped.id).cancel(str(tmp_path / "b"))
    with pytest.raises(NotAllowed, match="was cancelled"):
        stale.set_mapping("lead", stale.mapping)
    with pytest.raises(NotAllowed, match="was cancelled"):
        stale.choose_kind("contact")
    assert ImportJob.get_by_id(mapped.id).status == "cancelled"


def test_http_too_many_files_at_once(app, logged_in):
    from models.imports import MAX_FILES
    card = b"BEGIN:VCARD\r\nFN:A\r\nEND:VCARD\r\n"
    resp = _upload_many(logged_in, [(f"c{i}.vcf", card) for i in range(MAX_FILES + 1)])
    assert resp.status_code == 413 and f"At most {MAX_FILES} files at once" in resp.get_data(as_text=True)
    assert os.listdir(os.path.join(app.config["INSTANCE_PATH"], "imports")) == []
    assert _upload_many(logged_in, [(f"c{i}.vcf", card) for i in range(MAX_FILES)]).status_code == 303


def test_a_100000_row_file_imports_in_bounded_memory(tmp_path):
    """The file is streamed by byte offset, one chunk at a time: Python's peak allocation during a 100 000-row
    import stays far below the file's size (SQLite only: the streaming does not depend on the database;
    tests/bench/bench_import.py reports rows/s and the peaks on both)."""
    import shutil
    import tracemalloc

    from models.schema import bind, upgrade
    path = tmp_path / "leads.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("Name,Company,Email,Budget,Notes\n")
        for i in range(100_000):
            fh.write(f"Person {i},Firm {i // 3} GmbH,p{i}@example.com,{100 + i % 900},Met at the fair in hall {i % 7}\n")
    size = os.path.getsize(path)
    bind(f"sqlite:///{tmp_path / 'big.db'}")
    upgrade()
    with db.connection_context():
        owner = User.create_user("big@example.com", PASSWORD, "Big Importer", "seller")
        directory = str(tmp_path / "imports")
        os.makedirs(directory)
        upload = os.path.join(directory, "upload.part")
        shutil.copyfile(path, upload)  # as the upload request saves it, without the bytes in memory
        tracemalloc.start()
        try:
            job = ImportJob.create_from_upload(owner, "lead", upload, "leads.csv", directory)
            job.set_mapping("lead", job.mapping)
            assert job.start(owner, "skip", "valid")
            job.run_all(directory, chunk_rows=1000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        job = ImportJob.get_by_id(job.id)
        assert (job.status, job.created_count, job.invalid_count) == ("done", 100_000, 0)
        assert Lead.select().count() == 100_000 and HistoryEvent.select().count() == 100_000
    print(f"100 000 rows: peak {peak / 1e6:.1f} MB of Python allocations for a {size / 1e6:.1f} MB file")
    assert peak < size / 2, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
