"""Import in a real browser: upload a CSV, fix a mapping, see preview errors, run, watch progress, read the report."""
from models import HistoryEvent, Lead, db


def _csv():
    rows = ["Full name;Firma;E-Mail;Rufnummer;Budget"]
    rows += [f"Person {i};Firma {i} GmbH;person{i}@example.com;+49 30 {1000 + i};{100 + i}" for i in range(58)]
    rows.insert(4, "Broken Row;X;not-an-email;;-5")
    rows.append("Person 1 again;;person1@example.com;;")
    return ("\n".join(rows) + "\n").encode("utf-8")


def test_import_leads_from_csv(page, app, screenshot):
    app.config["IMPORT_CHUNK_ROWS"] = 5  # many small chunks, so the progress can be watched
    page.goto(f"{page.base}/leads")
    page.get_by_role("link", name="Import").click()
    page.wait_for_url("**/imports?kind=lead")
    assert page.locator("#f-kind").input_value() == "lead"
    page.set_input_files("#f-file", files=[{"name": "messe-leads.csv", "mimeType": "text/csv", "buffer": _csv()}])
    screenshot(page, "import-1-upload")
    page.get_by_role("button", name="Upload and map columns").click()
    page.locator("#import-mapping").wait_for()
    assert "semicolon-separated" in page.locator(".import-facts").inner_text()
    phone = page.get_by_label("Field for the column Rufnummer")
    assert phone.input_value() == ""  # not guessed: "Rufnummer" is no known header
    assert page.get_by_label("Field for the column E-Mail").input_value() == "email"
    screenshot(page, "import-2-mapping-guessed")

    phone.select_option("phone")  # fixing the mapping shows the preview at once (htmx)
    page.locator("#import-preview").wait_for()
    assert page.locator("[data-preview-errors]").get_attribute("data-preview-errors") == "1"
    bad = page.locator('#import-preview tr.has-error')
    assert bad.count() == 1
    assert "Enter a valid email address" in bad.inner_text() and "Must be at least 0." in bad.inner_text()
    assert page.get_by_label("Field for the column Rufnummer").input_value() == "phone"
    page.locator("#import-preview").scroll_into_view_if_needed()
    screenshot(page, "import-3-preview-errors")

    page.get_by_label("Skip the row (keep the existing record)").check()
    page.get_by_label("Only the valid rows: invalid rows are skipped and listed in the report").check()
    page.locator("#import-start").scroll_into_view_if_needed()
    screenshot(page, "import-4-choices")
    page.get_by_role("button", name="Start import").click()
    page.locator("#import-progress").wait_for()
    seen, shot = set(), False
    for _ in range(200):
        if page.locator("#import-report").count():
            break
        # read in one step: the bar may be swapped for the report between two locator calls
        value = page.evaluate("() => document.querySelector('progress.import-bar')?.getAttribute('value') ?? null")
        if value is not None:
            seen.add(int(value))
            if not shot and 20 <= int(value) < 100:
                screenshot(page, "import-5-progress")
                shot = True
        page.wait_for_timeout(50)
    page.locator("#import-report").wait_for()
    assert len(seen - {0, 100}) >= 2, seen  # the bar moved through several steps
    report = page.locator("#import-report")
    assert report.locator('[data-count="created"]').inner_text() == "58"
    assert report.locator('[data-count="skipped"]').inner_text() == "1"
    assert report.locator('[data-count="invalid"]').inner_text() == "1"
    assert "Same as row 3 of this file" in report.inner_text()
    screenshot(page, "import-6-report")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the report (CSV)").click()
    text = open(download_info.value.path(), encoding="utf-8").read()
    assert text.startswith("row,outcome,record,record_id,label,reason")
    assert "invalid" in text and "skipped" in text
    with db.connection_context():
        assert Lead.select().where((Lead.source == "import") & (Lead.status == "open")).count() == 58
        assert HistoryEvent.select().where(HistoryEvent.record_type == "lead").count() == 58

    report_url = page.url
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "import-7-report-phone")
    page.set_viewport_size({"width": 1920, "height": 1000})
    assert page.url == report_url
    page.get_by_role("link", name="Go to leads").click()
    page.locator("#list", has_text="Person 57").wait_for()
    assert page.console_errors == []


def _card(name, email, company):
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{name}\r\nORG:{company}\r\nEMAIL:{email}\r\nEND:VCARD\r\n".encode("utf-8")


def test_a_folder_of_business_cards_then_a_cancelled_upload(page, app, screenshot):
    """Several .vcf files chosen at once become one import of leads; an upload can be cancelled."""
    page.goto(f"{page.base}/imports?kind=lead")
    cards = [{"name": f"card-{i}.vcf", "mimeType": "text/vcard",
              "buffer": _card(f"Visitor {i}", f"visitor{i}@fair.example", f"Stand {i} GmbH")} for i in range(6)]
    page.set_input_files("#f-file", files=cards)
    page.get_by_role("button", name="Upload and map columns").click()
    page.locator("#import-mapping").wait_for()
    assert "card-0.vcf and 5 more vCard files" in page.locator("main").inner_text()
    page.get_by_role("button", name="Show the preview").click()
    page.locator("#import-preview").wait_for()
    page.get_by_label("Skip the row (keep the existing record)").check()
    page.get_by_label("Only the valid rows: invalid rows are skipped and listed in the report").check()
    page.get_by_role("button", name="Start import").click()
    page.locator("#import-report").wait_for()
    assert page.locator('#import-report [data-count="created"]').inner_text() == "6"
    with db.connection_context():
        assert Lead.select().where(Lead.email.endswith("@fair.example")).count() == 6

    page.goto(f"{page.base}/imports?kind=lead")
    page.set_input_files("#f-file", files=[{"name": "later.csv", "mimeType": "text/csv",
                                            "buffer": b"Name,Email\nLate Larry,larry@example.com\n"}])
    page.get_by_role("button", name="Upload and map columns").click()
    page.locator("#import-mapping").wait_for()
    page.locator(".import-cancel").scroll_into_view_if_needed()
    screenshot(page, "import-8-cancel")
    page.get_by_role("button", name="Cancel this import").click()
    page.locator("#import-report").wait_for()
    assert "Import cancelled" in page.locator("#import-report").inner_text()
    assert page.locator(".import-cancel").count() == 0
    screenshot(page, "import-9-cancelled")
    with db.connection_context():
        assert Lead.select().where(Lead.email == "larry@example.com").count() == 0
