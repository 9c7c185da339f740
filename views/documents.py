"""Documents: quote and invoice PDFs at stable URLs; frozen ones are served exactly as stored."""
from flask import Blueprint, abort, make_response, request

from models import CreditNote, Invoice, Quote
from models.documents import document_pdf, is_frozen
from .common import url_record

bp = Blueprint("documents", __name__)


def file_response(make_body, media_type, file_name, digest=None):
    """A document's file as a download (?view=1: shown in the browser instead). With `digest` (the SHA-256 of
    a frozen document) the answer carries it as ETag, and a client that holds it gets 304 without the file
    being read; without one (a live draft) the answer is not stored."""
    if digest and request.if_none_match.contains(digest):
        resp = make_response("", 304)
    else:
        resp = make_response(make_body())
        resp.headers["Content-Type"] = media_type
        disposition = "inline" if request.args.get("view") == "1" else "attachment"
        resp.headers["Content-Disposition"] = f'{disposition}; filename="{file_name}"'
        resp.headers["X-Content-Type-Options"] = "nosniff"
    if digest:
        resp.set_etag(digest)
        resp.headers["Cache-Control"] = "private, no-cache"
    else:
        resp.headers["Cache-Control"] = "private, no-store"
    return resp


def pdf_response(document):
    """The document's PDF: the stored bytes once frozen, else a live render marked DRAFT."""
    return file_response(lambda: document_pdf(document), "application/pdf", document.file_name,
                         document.pdf_sha256 if is_frozen(document) else None)


def xml_response(document):
    """An issued invoice's or a credit note's Factur-X XML as sent, embedded in its frozen PDF (refused with the
    reason when there is none: a draft, a PDF never stored)."""
    return file_response(document.e_invoice_xml, "application/xml", document.xml_file_name,
                         document.pdf_sha256 if is_frozen(document) else None)


@bp.get("/quotes/<int:quote_id>.pdf")
def quote_pdf(quote_id):
    """The quote as PDF (frozen since activation; a draft renders live, marked DRAFT)."""
    return pdf_response(url_record("quote_id"))


@bp.get("/invoices/<int:invoice_id>.pdf")
def invoice_pdf(invoice_id):
    """The invoice as PDF (frozen PDF/A-3b with Factur-X since issue; a draft renders live, marked DRAFT)."""
    return pdf_response(url_record("invoice_id"))


@bp.get("/invoices/<int:invoice_id>/factur-x.xml")
def invoice_xml(invoice_id):
    """The issued invoice's Factur-X XML alone, for a portal or an accounting system (a draft: refused with
    the reason, 409 for htmx)."""
    return xml_response(url_record("invoice_id"))


@bp.get("/invoices/<int:invoice_id>/credit-note.pdf")
def credit_note_pdf(invoice_id):
    """The credit note that voided a canceled invoice (frozen PDF/A-3b with Factur-X type 381)."""
    return pdf_response(CreditNote.of(url_record("invoice_id")))


@bp.get("/invoices/<int:invoice_id>/credit-note.xml")
def credit_note_xml(invoice_id):
    """The credit note's Factur-X XML (type 381) alone."""
    return xml_response(CreditNote.of(url_record("invoice_id")))


@bp.get("/opportunities/<int:opportunity_id>/quote.pdf")
def deal_quote_pdf(opportunity_id):
    """The deal's current quote (the active one, else the newest draft) — the board card menu links here."""
    from flask import redirect, url_for
    quote = (Quote.select(Quote.id).where((Quote.opportunity == url_record("opportunity_id").id) & Quote.status.in_(["active", "draft", "won"]))
             .order_by((Quote.status == "active").desc(), Quote.revision.desc()).first())
    if quote is None:
        abort(404)
    return redirect(url_for("documents.quote_pdf", quote_id=quote.id))


@bp.get("/opportunities/<int:opportunity_id>/invoice.pdf")
def deal_invoice_pdf(opportunity_id):
    """The deal's issued (or paid) invoice — the board card menu links here."""
    from flask import redirect, url_for
    invoice = (Invoice.select(Invoice.id).where((Invoice.opportunity == url_record("opportunity_id").id)
                                                & Invoice.status.in_(["issued", "paid"]))
               .order_by(Invoice.id.desc()).first())
    if invoice is None:
        abort(404)
    return redirect(url_for("documents.invoice_pdf", invoice_id=invoice.id))
