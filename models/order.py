"""Sales orders: created from a won quote with its lines frozen."""
from decimal import Decimal

from peewee import CharField, Check, DateField, DateTimeField, ForeignKeyField, IntegerField, TextField

from .base import BaseModel, MoneyField, now, today, write_transaction
from .errors import NotAllowed, RuleNotMet
from .history import HistoryEvent, Tracked
from .lines import HasLines, LineBase
from .opportunity import Opportunity
from .party import Account, Contact
from .quote import Quote
from .settings import NumberSequence
from .validation import Cleaner
from .access import through_deal


class Order(Tracked, HasLines, BaseModel):
    record_type = "order"

    number = IntegerField(unique=True)
    quote = ForeignKeyField(Quote, unique=True, backref="orders", on_delete="RESTRICT")
    opportunity = ForeignKeyField(Opportunity, backref="orders", on_delete="RESTRICT")
    account = ForeignKeyField(Account, null=True, backref="orders", on_delete="RESTRICT")
    contact = ForeignKeyField(Contact, null=True, backref="orders", on_delete="RESTRICT")
    status = CharField(max_length=10, default="open",
                       constraints=[Check("status IN ('open', 'fulfilled', 'canceled')")])
    order_date = DateField(default=today)
    fulfilled_at = DateTimeField(null=True)
    cancel_reason = TextField(default="")
    net_total = MoneyField(default=Decimal("0.00"))
    tax_total = MoneyField(default=Decimal("0.00"))
    gross_total = MoneyField(default=Decimal("0.00"))
    version = IntegerField(default=1)
    created_at = DateTimeField(default=now)
    updated_at = DateTimeField(default=now)

    @classmethod
    def access_rule(cls, user, write=False):
        """Its deal's owner and team may see / change it: see models/access.py."""
        return through_deal(cls.opportunity, user, write)

    @property
    def display_number(self):
        return f"SO-{self.number:05d}"

    @property
    def display_name(self):
        return self.display_number

    @property
    def invoice(self):
        """The order's invoice that is not canceled (None if there is none)."""
        from .invoice import Invoice
        return (Invoice.select().where((Invoice.order == self.id) & (Invoice.status != "canceled"))
                .order_by(Invoice.id.desc()).first())

    def possible_actions(self):
        """The lifecycle steps this order's state allows (the methods refuse anything else)."""
        actions = ["fulfil"] if self.status == "open" else []
        invoice = self.invoice if self.status != "canceled" else None
        if self.status != "canceled" and invoice is None:
            actions.append("invoice")
        if self.status == "open" and self._invoice_keeps_it(invoice) is None:
            actions.append("cancel")
        return actions

    def _invoice_keeps_it(self, invoice):
        """Why the order's live `invoice` keeps it from being canceled (None when it does not): an issued
        invoice is canceled first (its credit note voids it), a paid one never."""
        if invoice is not None and invoice.status == "paid":
            return (f"Order {self.display_number} is invoiced and paid ({invoice.number}): it can no longer be "
                    "canceled. Fulfil it, or settle a refund with the customer.")
        if invoice is not None and invoice.status == "issued":
            return (f"Order {self.display_number} has invoice {invoice.number} issued: cancel the invoice first "
                    "(a credit note voids it), then the order.")
        return None

    def lines_locked_reason(self):
        return f"Order {self.display_number} has frozen prices; its lines cannot change."

    @classmethod
    def create_from_quote(cls, actor, quote):
        """An open order with the won quote's lines copied (prices frozen)."""
        with write_transaction():
            order = cls.create(number=NumberSequence.next_value("order"), quote=quote.id,
                               opportunity=quote.opportunity_id, account=quote.account_id,
                               contact=quote.contact_id)
            order.copy_lines_from(quote)
            order.refresh_totals()
            order.save()
            HistoryEvent.write(actor, order, "create", {"status": (None, "open")},
                               note=f"From quote {quote.display_number}")
        return order

    def create_invoice(self, actor, expected_version=None):
        """Draft this order's invoice from a fresh read: the order row is locked so only one is made
        (after the deal's row, in the order a board move takes them: no deadlock)."""
        from .invoice import Invoice
        with write_transaction():
            Opportunity.get_locked(self.opportunity_id)
            self.reload_locked()
            self.check_version(expected_version)
            return Invoice.create_from_order(actor, self)

    def fulfil(self, actor, expected_version=None):
        """Open -> fulfilled (delivered)."""
        with write_transaction():
            self.reload_locked()
            if self.status == "fulfilled":
                return False
            if self.status != "open":
                raise NotAllowed(f"Order {self.display_number} is {self.status}; it cannot be fulfilled.")
            self.check_version(expected_version)
            self.status = "fulfilled"
            self.fulfilled_at = now()
            self.save_version()
            HistoryEvent.write(actor, self, "fulfil", {"status": ("open", "fulfilled")})
        return True

    def fulfil_and_sync(self, actor, expected_version=None):
        """Fulfil (the order panel's button) and put the deal's card in the column its documents now say;
        the deal's row is locked before the order's, in the order a board move takes them (no deadlock)."""
        with write_transaction():
            deal = Opportunity.get_locked(self.opportunity_id)
            changed = self.fulfil(actor, expected_version)
            deal.sync_column(actor)
        return changed

    def cancel(self, actor, expected_version=None, reason=None):
        """Open -> canceled, with a reason; the deal leaves the board. Deal locked first (as a move does)."""
        c = Cleaner({"reason": reason or ""})
        c.text("reason", 2000, multiline=True)
        values = c.raise_if_errors("The order could not be canceled.")
        with write_transaction():
            deal = Opportunity.get_locked(self.opportunity_id)
            self.reload_locked()
            if self.status == "canceled":
                return False
            if self.status != "open":
                raise NotAllowed(f"Order {self.display_number} is {self.status}; only an open order can be canceled.")
            self.check_version(expected_version)
            refusal = self._invoice_keeps_it(self.invoice)
            if refusal:
                raise NotAllowed(refusal)
            if not values.get("reason"):
                raise RuleNotMet("Say why the order is canceled.", {"reason": "Enter a reason."})
            self.status = "canceled"
            self.cancel_reason = values["reason"]
            self.save_version()
            HistoryEvent.write(actor, self, "cancel", {"status": ("open", "canceled")}, note=values["reason"])
            deal.sync_column(actor)
        return True


class OrderLine(LineBase):
    document = ForeignKeyField(Order, backref="lines", on_delete="CASCADE")


Order.line_model = OrderLine
