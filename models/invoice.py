"""Invoices: drafted from an order, numbered gaplessly per year when issued, then frozen."""
import datetime
from decimal import Decimal

from peewee import BlobField, CharField, Check, DateField, DateTimeField, ForeignKeyField, IntegerField, TextField

from .base import BaseModel, MoneyField, now, slow_work_outside_lock, today, write_transaction
from .errors import NotAllowed, NotFound, RuleNotMet, ValidationError
from .history import HistoryEvent, Tracked
from .lines import HasLines, LineBase
from .opportunity import Opportunity
from .order import Order
from .party import Account, Contact
from .settings import NumberSequence, Settings
from .validation import Cleaner
from .access import through_deal
from .security import SecurityEvent


class EInvoiceFile:
    """What an issued invoice and a credit note share: their Factur-X XML, as embedded in the frozen PDF, is
    also a file of its own (for portals and accounting systems that take the XML alone)."""

    @property
    def xml_file_name(self):
        return f"{self.number}-factur-x.xml"

    def e_invoice_xml(self):
        """The embedded XML, byte for byte; NotAllowed (with the reason) when there is none."""
        from .documents import embedded_xml, is_frozen
        xml = embedded_xml(self)
        if xml is not None:
            return xml
        kind = self.record_type.replace("_", " ")
        if not self.number:
            raise NotAllowed(f"This {kind} has no e-invoice yet: its Factur-X XML is made when it is issued.")
        if not is_frozen(self):
            raise NotAllowed(f"The PDF of {self.number} was never stored, so it has no e-invoice file: an "
                             "administrator runs the freeze-documents command.")
        raise NotAllowed(f"The stored PDF of {self.number} carries no Factur-X XML.")


class Invoice(EInvoiceFile, Tracked, HasLines, BaseModel):
    record_type = "invoice"

    number = CharField(max_length=20, null=True, unique=True)
    year = IntegerField(null=True)
    sequence = IntegerField(null=True)
    order = ForeignKeyField(Order, backref="invoices", on_delete="RESTRICT")
    opportunity = ForeignKeyField(Opportunity, backref="invoices", on_delete="RESTRICT")
    account = ForeignKeyField(Account, null=True, backref="invoices", on_delete="RESTRICT")
    contact = ForeignKeyField(Contact, null=True, backref="invoices", on_delete="RESTRICT")
    status = CharField(max_length=10, default="draft",
                       constraints=[Check("status IN ('draft', 'issued', 'paid', 'canceled')")])
    issue_date = DateField(null=True)
    due_date = DateField(null=True)
    payment_terms_days = IntegerField(default=30, constraints=[Check("payment_terms_days BETWEEN 0 AND 3650")])
    payment_terms = TextField(default="")
    notes = TextField(default="")
    reminded_at = DateTimeField(null=True)  # the last payment reminder (claimed by a reminder run before it sends)
    period_start = DateField(null=True)  # the service period a subscription or a project is invoiced for
    period_end = DateField(null=True)
    paid_on = DateField(null=True)
    cancel_reason = TextField(default="")
    net_total = MoneyField(default=Decimal("0.00"))
    tax_total = MoneyField(default=Decimal("0.00"))
    gross_total = MoneyField(default=Decimal("0.00"))
    pdf = BlobField(null=True)
    pdf_sha256 = CharField(max_length=64, null=True)
    version = IntegerField(default=1)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    class Meta:
        indexes = ((("year", "sequence"), True), (("status", "due_date"), False))

    @classmethod
    def access_rule(cls, user, write=False):
        """Its deal's owner and team may see / change it: see models/access.py."""
        return through_deal(cls.opportunity, user, write)

    @property
    def display_number(self):
        return self.number or f"Draft invoice #{self.id}"

    @property
    def display_name(self):
        return self.display_number

    @property
    def file_name(self):
        return f"{self.number or f'draft-invoice-{self.id}'}.pdf"

    @property
    def payment_state(self):
        """paid / overdue / unpaid for an issued invoice (the badge on Invoiced cards)."""
        if self.status == "paid":
            return "paid"
        if self.status == "issued":
            return "overdue" if self.due_date and self.due_date < today() else "unpaid"
        return self.status

    def possible_actions(self):
        """The lifecycle steps this invoice's state allows (the methods refuse anything else)."""
        if self.status == "draft" and self.order.status == "canceled":
            return ["cancel"]  # the order was canceled behind its draft: nothing to issue
        return {"draft": ["issue", "cancel"], "issued": ["paid", "cancel"]}.get(self.status, [])

    def lines_locked_reason(self):
        if self.status != "draft":
            return f"Invoice {self.display_number} is {self.status}; an issued invoice cannot change."
        return None

    @staticmethod
    def format_number(year, sequence):
        return f"INV-{year}-{sequence:05d}"

    @classmethod
    def create_from_order(cls, actor, order):
        """A draft invoice with the order's lines; one live invoice per order (checked under the order's lock)."""
        settings = Settings.load(logo=False)
        with write_transaction():
            order.reload_locked()
            if order.invoice is not None:
                raise NotAllowed(f"Order {order.display_number} already has invoice "
                                 f"{order.invoice.display_number}.")
            if order.status == "canceled":
                raise NotAllowed(f"Order {order.display_number} is canceled.")
            replaced = (cls.select(cls.period_start, cls.period_end)
                        .where((cls.order == order.id) & (cls.status == "canceled")).order_by(cls.id.desc()).first())
            invoice = cls.create(order=order.id, opportunity=order.opportunity_id, account=order.account_id,
                                 contact=order.contact_id, payment_terms_days=settings.payment_terms_days,
                                 payment_terms=settings.payment_terms_text, notes=order.quote.notes,
                                 # the invoice that replaces a canceled one is for the same service period
                                 period_start=replaced and replaced.period_start,
                                 period_end=replaced and replaced.period_end)
            invoice.copy_lines_from(order)
            invoice.refresh_totals()
            invoice.save()
            HistoryEvent.write(actor, invoice, "create", {"status": (None, "draft")},
                               note=f"From order {order.display_number}")
        return invoice

    @staticmethod
    def clean(data, partial=True):
        """Validate the editable fields of a draft invoice."""
        c = Cleaner(data)
        c.integer("payment_terms_days", minimum=0, maximum=3650)
        c.text("payment_terms", 2000, multiline=True)
        c.text("notes", 5000, multiline=True)
        c.date("period_start")
        c.date("period_end")
        values = c.raise_if_errors("The invoice could not be saved.")
        if values.get("payment_terms_days") is None:
            values.pop("payment_terms_days", None)
        return values

    def prepare_update(self, values):
        """A service period ends on or after its start (each end is saved on its own: checked against the other)."""
        start = values.get("period_start", self.period_start)
        end = values.get("period_end", self.period_end)
        if start and end and end < start:
            field = "period_end" if "period_end" in values else "period_start"
            raise ValidationError("The invoice could not be saved.", {field: (
                f"The service period runs from {start.isoformat()} to {end.isoformat()}: its end cannot come "
                "before its start.")})
        return values

    def edit_locked_reason(self):
        return self.lines_locked_reason()

    def issue_missing(self):
        """What an invoice needs before it can be issued (field -> message)."""
        missing = {}
        if not self.line_rows():
            missing["line"] = "Add at least one line."
        if not self.account_id and not self.contact_id:
            missing["customer"] = "Choose the customer."
        if bool(self.period_start) != bool(self.period_end):
            missing["period_end" if self.period_start else "period_start"] = (
                "Enter both ends of the service period, or clear it.")
        from .documents import issue_missing as e_invoice_missing
        missing.update(e_invoice_missing(self, Settings.load(logo=False)))
        return missing

    @slow_work_outside_lock
    def issue(self, actor, expected_version=None, issue_date=None, sync=True):
        """Draft -> issued: the next number of the year is allocated in this same transaction.

        sync=False leaves the deal's board column to the caller (a board move writes its own event).
        The deal's row is locked before the invoice's, in the order a board move takes them (no deadlock).
        """
        c = Cleaner({"issue_date": issue_date})
        c.date("issue_date", maximum=today() + datetime.timedelta(days=1))
        issued_on = c.raise_if_errors("The invoice could not be issued.").get("issue_date") or self.next_issue_date()
        from .documents import categories_of, freeze, missing_summary, warm_up
        warm_up()
        with write_transaction():
            deal = Opportunity.get_locked(self.opportunity_id) if sync else None
            self.reload_locked()
            if self.status in ("issued", "paid"):
                return False
            if self.status != "draft":
                raise NotAllowed(f"Invoice {self.display_number} is {self.status}; it cannot be issued.")
            self.check_version(expected_version)
            if self.order.status == "canceled":
                raise NotAllowed(f"Order {self.order.display_number} is canceled: its draft invoice cannot be "
                                 "issued. Cancel the draft.")
            missing = self.issue_missing()
            if missing:
                raise RuleNotMet(f"The invoice is not ready to issue: {missing_summary(missing)}.", missing)
            delivered = self.order.fulfilled_at
            if delivered and issued_on < delivered.date() and \
                    "K" in categories_of(self, Settings.load(logo=False)):
                raise ValidationError("The invoice could not be issued.", {"issue_date": (
                    f"Goods sent to another EU country are invoiced once delivered: date the invoice on or after "
                    f"the delivery, {delivered.date().isoformat()}.")})
            sequence = NumberSequence.next_value(f"invoice-{issued_on.year}")
            self._check_dated_in_order(issued_on)
            self.year, self.sequence = issued_on.year, sequence
            self.number = self.format_number(issued_on.year, sequence)
            self.status = "issued"
            self.issue_date = issued_on
            self.due_date = issued_on + datetime.timedelta(days=self.payment_terms_days)
            self.refresh_totals()
            pdf_sha256 = freeze(self)
            self.save_version()
            HistoryEvent.write(actor, self, "issue", {"status": ("draft", "issued"), "number": (None, self.number),
                                                      "pdf_sha256": (None, pdf_sha256)})
            SecurityEvent.log("invoice_issued", actor=actor, detail=f"{self.number} {self.gross_total}")
            if sync:
                deal.sync_column(actor)
        return True

    @classmethod
    def _latest_of_year(cls, year, but=None):
        """The year's numbered invoice with the latest date (and of those the highest number), or None."""
        return (cls.select(cls.id, cls.number, cls.issue_date)
                .where(cls.year == year, cls.number.is_null(False), cls.id != (but or 0))
                .order_by(cls.issue_date.desc(), cls.sequence.desc()).first())

    @classmethod
    def next_issue_date(cls):
        """The date an invoice issued now gets unless another is given: today, or the date of this year's
        latest invoice when that one is dated tomorrow (a year's numbers follow their dates)."""
        day = today()
        latest = cls._latest_of_year(day.year)
        return max(day, latest.issue_date) if latest else day

    def _check_dated_in_order(self, issued_on):
        """A year's invoice numbers follow their dates (France asks for it, and accountants read gaps in that
        order as missing invoices): an invoice is not dated before the latest one of its year already issued.
        Read once the year's number is taken, so two invoices issued at once are checked one after the other."""
        latest = self._latest_of_year(issued_on.year, but=self.id)
        if latest and issued_on < latest.issue_date:
            raise ValidationError("The invoice could not be issued.", {"issue_date": (
                f"Invoice {latest.number} is dated {latest.issue_date.isoformat()}: date this one on that day "
                f"or later, so that the year's numbers follow their dates.")})

    def mark_paid(self, actor, expected_version=None, paid_on=None):
        """Issued -> paid on a date (default today)."""
        c = Cleaner({"paid_on": paid_on})
        c.date("paid_on", maximum=today())
        paid = c.raise_if_errors("The payment could not be recorded.").get("paid_on") or today()
        with write_transaction():
            self.reload_locked()
            if self.status == "paid":
                return False
            if self.status != "issued":
                raise NotAllowed(f"Invoice {self.display_number} is {self.status}; only an issued invoice can be paid.")
            self.check_version(expected_version)
            if paid < self.issue_date:
                raise RuleNotMet("The payment date is before the invoice date.",
                                 {"paid_on": f"Enter a date from {self.issue_date} on."})
            self.status = "paid"
            self.paid_on = paid
            self.save_version()
            HistoryEvent.write(actor, self, "paid", {"status": ("issued", "paid"), "paid_on": (None, paid)})
        return True

    @slow_work_outside_lock
    def cancel(self, actor, expected_version=None, reason=None):
        """Draft/issued -> canceled; an issued invoice keeps its number (no gap) and is voided by a credit
        note issued in the same transaction (numbered, frozen, Factur-X type 381). Deal locked first."""
        c = Cleaner({"reason": reason or ""})
        c.text("reason", 2000, multiline=True)
        values = c.raise_if_errors("The invoice could not be canceled.")
        from .documents import warm_up
        warm_up()
        with write_transaction():
            deal = Opportunity.get_locked(self.opportunity_id)
            self.reload_locked()
            if self.status == "canceled":
                return False
            if self.status == "paid":
                raise NotAllowed(f"Invoice {self.display_number} is paid; it cannot be canceled.")
            self.check_version(expected_version)
            if not values.get("reason"):
                raise RuleNotMet("Say why the invoice is canceled.", {"reason": "Enter a reason."})
            old = self.status
            self.status = "canceled"
            self.cancel_reason = values["reason"]
            self.save_version()
            changes = {"status": (old, "canceled")}
            if old == "issued":
                credit = CreditNote.issue_for(self)
                changes.update(credit_note=(None, credit.number), credit_note_sha256=(None, credit.pdf_sha256))
            HistoryEvent.write(actor, self, "cancel", changes, note=values["reason"])
            credited = f" (credit note {changes['credit_note'][1]})" if "credit_note" in changes else ""
            SecurityEvent.log("invoice_canceled", actor=actor,
                              detail=f"{self.number or 'draft'}{credited}: {values['reason']}")
            deal.sync_column(actor)
        return True

    @property
    def credit_note_number(self):
        if "_credit_note_number" in self.__dict__:
            return self.__dict__["_credit_note_number"]
        credit = self.credit_note
        return credit.number if credit else None

    @classmethod
    def read_credit_note_numbers(cls, invoices):
        """Reads the credit-note numbers of a page of invoices in one query (instead of one per canceled
        invoice), kept on each invoice for `credit_note_number`."""
        voided = [invoice.id for invoice in invoices if invoice.status == "canceled" and invoice.number]
        numbers = dict(CreditNote.select(CreditNote.invoice, CreditNote.number)
                       .where(CreditNote.invoice.in_(voided)).tuples()) if voided else {}
        for invoice in invoices:
            invoice.__dict__["_credit_note_number"] = numbers.get(invoice.id)
        return invoices

    @property
    def credit_note(self):
        """The credit note that voided this issued invoice (None when there is none)."""
        if self.status != "canceled" or not self.number:
            return None
        return CreditNote.of(self, pdf=False, required=False)


class CreditNote(EInvoiceFile, BaseModel):
    """The document that voids an issued invoice in full (UNTDID 1001 type 381, referring to the invoice):
    numbered gaplessly per year in its own sequence, rendered once and frozen like the invoice."""
    record_type = "credit_note"

    invoice = ForeignKeyField(Invoice, unique=True, backref="credit_notes", on_delete="RESTRICT")
    number = CharField(max_length=20, unique=True)
    year = IntegerField()
    sequence = IntegerField()
    issue_date = DateField()
    reason = TextField(default="")
    pdf = BlobField(null=True)
    pdf_sha256 = CharField(max_length=64, null=True)
    created_at = DateTimeField(default=now)

    class Meta:
        table_name = "credit_note"
        indexes = ((("year", "sequence"), True),)

    @staticmethod
    def format_number(year, sequence):
        return f"CN-{year}-{sequence:05d}"

    @property
    def display_number(self):
        return self.number

    @property
    def file_name(self):
        return f"{self.number}.pdf"

    @classmethod
    def of(cls, invoice, pdf=True, required=True):
        """The credit note that voided `invoice` (pdf=False: without the PDF's bytes); when there is none,
        NotFound, or None if not `required`."""
        query = cls.select() if pdf else cls.select_without("pdf")
        credit = query.where(cls.invoice == invoice.id).first()
        if credit is None and required:
            raise NotFound("This invoice has no credit note: one is issued when an issued invoice is canceled.")
        return credit

    @classmethod
    def issue_for(cls, invoice):
        """Number, store and freeze the credit note of `invoice` (inside the caller's write transaction). Its
        e-invoice is made from the invoice's own, so an invoice issued before invoices were frozen gets its
        PDF stored first."""
        from .documents import freeze, freeze_after_the_fact
        if not invoice.pdf:
            freeze_after_the_fact(invoice)
        issued_on = max(today(), invoice.issue_date)  # an invoice may be dated tomorrow: never before it
        sequence = NumberSequence.next_value(f"credit-note-{issued_on.year}")
        credit = cls.create(invoice=invoice, number=cls.format_number(issued_on.year, sequence),
                            year=issued_on.year, sequence=sequence, issue_date=issued_on,
                            reason=invoice.cancel_reason)
        freeze(credit)
        credit.save()
        return credit


class InvoiceLine(LineBase):
    document = ForeignKeyField(Invoice, backref="lines", on_delete="CASCADE")


Invoice.line_model = InvoiceLine
