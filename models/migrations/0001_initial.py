"""Initial schema (frozen copy of the models), with the CHECK constraints added by hand."""
# Generated from a schema diff on 2026-11-23 15:44.
from peewee import *
from models.base import MoneyField
from models.base import PercentField
from models.base import QuantityField
import decimal


def up(migrator, db):
    class User(Model):
        name = CharField(max_length=120)
        email = CharField(unique=True, max_length=254)
        password_hash = CharField()
        role = CharField(max_length=16, default='seller', constraints=[Check("role IN ('seller', 'manager', 'admin')")])
        active = BooleanField(default=True)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'user'
    db.create_tables([User])

    class Account(Model):
        name = CharField(index=True, max_length=200)
        vat_id = CharField(max_length=40, default='')
        email = CharField(max_length=254, default='')
        phone = CharField(max_length=40, default='')
        website = CharField(max_length=200, default='')
        street = CharField(max_length=200, default='')
        postal_code = CharField(max_length=20, default='')
        city = CharField(max_length=100, default='')
        country = CharField(max_length=2, default='DE')
        owner = ForeignKeyField(User, null=True, on_delete='SET NULL')
        version = IntegerField(default=1)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'account'
    db.create_tables([Account])

    class Activity(Model):
        kind = CharField(max_length=16, constraints=[Check("kind IN ('note', 'call', 'email', 'meeting', 'task')")])
        subject = CharField(max_length=200)
        body = TextField(default='')
        due_date = DateField(null=True)
        done = BooleanField(default=False)
        done_at = DateTimeField(null=True)
        record_type = CharField(max_length=32)
        record_id = IntegerField()
        owner = ForeignKeyField(User, null=True, on_delete='SET NULL')
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'activity'
            indexes = ((('record_type', 'record_id', 'done', 'due_date'), False),)
    db.create_tables([Activity])

    class Contact(Model):
        name = CharField(max_length=200)
        job_title = CharField(max_length=120, default='')
        email = CharField(index=True, max_length=254, default='')
        phone = CharField(max_length=40, default='')
        account = ForeignKeyField(Account, null=True, on_delete='SET NULL')
        street = CharField(max_length=200, default='')
        postal_code = CharField(max_length=20, default='')
        city = CharField(max_length=100, default='')
        country = CharField(max_length=2, default='DE')
        notes = TextField(default='')
        owner = ForeignKeyField(User, null=True, on_delete='SET NULL')
        version = IntegerField(default=1)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'contact'
    db.create_tables([Contact])

    class HistoryEvent(Model):
        at = DateTimeField(index=True)
        actor = ForeignKeyField(User, null=True, on_delete='SET NULL')
        record_type = CharField(max_length=32)
        record_id = IntegerField()
        action = CharField(max_length=32)
        from_stage = CharField(null=True, max_length=16)
        to_stage = CharField(null=True, max_length=16)
        changes = TextField(null=True)
        note = TextField(null=True)
        class Meta:
            database = db
            table_name = 'history_event'
            indexes = ((('record_type', 'record_id', 'at'), False),)
    db.create_tables([HistoryEvent])

    class Lead(Model):
        name = CharField(max_length=200)
        company = CharField(max_length=200, default='')
        private_buyer = BooleanField(default=False)
        job_title = CharField(max_length=120, default='')
        email = CharField(index=True, max_length=254, default='')
        phone = CharField(max_length=40, default='')
        source = CharField(max_length=20, default='other')
        topic = CharField(max_length=200, default='')
        budget_amount = MoneyField(null=True, constraints=[Check('budget_amount >= 0')])
        purchase_timeframe = CharField(null=True, max_length=20)
        decision_maker_known = BooleanField(default=False)
        rating = CharField(max_length=8, default='warm')
        notes = TextField(default='')
        owner = ForeignKeyField(User, null=True, on_delete='SET NULL')
        status = CharField(max_length=16, default='open', constraints=[Check("status IN ('open', 'qualified', 'disqualified')")])
        disqualify_reason = CharField(null=True, max_length=32)
        disqualify_note = TextField(default='')
        version = IntegerField(default=1)
        stage_entered_at = DateTimeField()
        last_activity_at = DateTimeField(null=True)
        closed_at = DateTimeField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'lead'
            indexes = ((('status', 'created_at'), False),)
    db.create_tables([Lead])

    class Opportunity(Model):
        topic = CharField(max_length=200)
        account = ForeignKeyField(Account, null=True, on_delete='RESTRICT')
        contact = ForeignKeyField(Contact, null=True, on_delete='RESTRICT')
        lead = ForeignKeyField(Lead, unique=True, null=True, on_delete='SET NULL')
        stage = CharField(max_length=16, default='develop', constraints=[Check("stage IN ('develop', 'propose', 'close')")])
        status = CharField(max_length=8, default='open', constraints=[Check("status IN ('open', 'won', 'lost')")])
        column = CharField(null=True, max_length=16, default='develop')
        probability = IntegerField(default=20, constraints=[Check('probability BETWEEN 0 AND 100')])
        revenue_mode = CharField(max_length=12, default='calculated', constraints=[Check("revenue_mode IN ('calculated', 'entered')")])
        estimated_revenue = MoneyField(default=decimal.Decimal('0.00'), constraints=[Check('estimated_revenue >= 0')])
        estimated_close_date = DateField(null=True)
        actual_revenue = MoneyField(null=True, constraints=[Check('actual_revenue >= 0')])
        actual_close_date = DateField(null=True)
        close_reason = CharField(null=True, max_length=20)
        competitor = CharField(max_length=200, default='')
        close_note = TextField(default='')
        lost_from = CharField(null=True, max_length=16)
        description = TextField(default='')
        owner = ForeignKeyField(User, null=True, on_delete='SET NULL')
        net_total = MoneyField(default=decimal.Decimal('0.00'))
        tax_total = MoneyField(default=decimal.Decimal('0.00'))
        gross_total = MoneyField(default=decimal.Decimal('0.00'))
        version = IntegerField(default=1)
        stage_entered_at = DateTimeField()
        last_activity_at = DateTimeField(null=True)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'opportunity'
            indexes = ((('column', 'estimated_close_date'), False), (('owner', 'column'), False))
    db.create_tables([Opportunity])

    class Quote(Model):
        number = IntegerField()
        revision = IntegerField(default=1, constraints=[Check('revision >= 1')])
        opportunity = ForeignKeyField(Opportunity, on_delete='RESTRICT')
        account = ForeignKeyField(Account, null=True, on_delete='RESTRICT')
        contact = ForeignKeyField(Contact, null=True, on_delete='RESTRICT')
        status = CharField(max_length=8, default='draft', constraints=[Check("status IN ('draft', 'active', 'won', 'lost', 'revised')")])
        valid_until = DateField(null=True)
        payment_terms = TextField(default='')
        notes = TextField(default='')
        activated_at = DateTimeField(null=True)
        closed_at = DateTimeField(null=True)
        net_total = MoneyField(default=decimal.Decimal('0.00'))
        tax_total = MoneyField(default=decimal.Decimal('0.00'))
        gross_total = MoneyField(default=decimal.Decimal('0.00'))
        pdf = BlobField(null=True)
        pdf_sha256 = CharField(null=True, max_length=64)
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL')
        version = IntegerField(default=1)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'quote'
            indexes = ((('number', 'revision'), True), (('opportunity', 'status'), False))
    db.create_tables([Quote])

    class Order(Model):
        number = IntegerField(unique=True)
        quote = ForeignKeyField(Quote, unique=True, on_delete='RESTRICT')
        opportunity = ForeignKeyField(Opportunity, on_delete='RESTRICT')
        account = ForeignKeyField(Account, null=True, on_delete='RESTRICT')
        contact = ForeignKeyField(Contact, null=True, on_delete='RESTRICT')
        status = CharField(max_length=10, default='open', constraints=[Check("status IN ('open', 'fulfilled', 'canceled')")])
        order_date = DateField()
        fulfilled_at = DateTimeField(null=True)
        cancel_reason = TextField(default='')
        net_total = MoneyField(default=decimal.Decimal('0.00'))
        tax_total = MoneyField(default=decimal.Decimal('0.00'))
        gross_total = MoneyField(default=decimal.Decimal('0.00'))
        version = IntegerField(default=1)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'order'
    db.create_tables([Order])

    class Invoice(Model):
        number = CharField(unique=True, null=True, max_length=20)
        year = IntegerField(null=True)
        sequence = IntegerField(null=True)
        order = ForeignKeyField(Order, on_delete='RESTRICT')
        opportunity = ForeignKeyField(Opportunity, on_delete='RESTRICT')
        account = ForeignKeyField(Account, null=True, on_delete='RESTRICT')
        contact = ForeignKeyField(Contact, null=True, on_delete='RESTRICT')
        status = CharField(max_length=10, default='draft', constraints=[Check("status IN ('draft', 'issued', 'paid', 'canceled')")])
        issue_date = DateField(null=True)
        due_date = DateField(null=True)
        payment_terms_days = IntegerField(default=30, constraints=[Check('payment_terms_days BETWEEN 0 AND 3650')])
        payment_terms = TextField(default='')
        notes = TextField(default='')
        paid_on = DateField(null=True)
        cancel_reason = TextField(default='')
        net_total = MoneyField(default=decimal.Decimal('0.00'))
        tax_total = MoneyField(default=decimal.Decimal('0.00'))
        gross_total = MoneyField(default=decimal.Decimal('0.00'))
        pdf = BlobField(null=True)
        pdf_sha256 = CharField(null=True, max_length=64)
        version = IntegerField(default=1)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'invoice'
            indexes = ((('year', 'sequence'), True), (('status', 'due_date'), False))
    db.create_tables([Invoice])

    class Product(Model):
        sku = CharField(unique=True, max_length=40)
        name = CharField(max_length=200)
        description = TextField(default='')
        unit = CharField(max_length=20, default='piece')
        list_price = MoneyField(default=decimal.Decimal('0.00'), constraints=[Check('list_price >= 0')])
        tax_rate = PercentField(default=decimal.Decimal('19.00'), constraints=[Check('tax_rate >= 0')])
        active = BooleanField(default=True)
        version = IntegerField(default=1)
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'product'
    db.create_tables([Product])

    class InvoiceLine(Model):
        position = IntegerField(default=0)
        product = ForeignKeyField(Product, field=Product.id, null=True, on_delete='RESTRICT')
        description = CharField(max_length=500)
        quantity = QuantityField(default=decimal.Decimal('1.000'), constraints=[Check('quantity > 0')])
        unit = CharField(max_length=20, default='piece')
        unit_price = MoneyField(default=decimal.Decimal('0.00'), constraints=[Check('unit_price >= 0')])
        discount_pct = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('discount_pct >= 0 AND discount_pct <= 10000')])
        tax_rate = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('tax_rate >= 0')])
        document = ForeignKeyField(Invoice, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'invoice_line'
    db.create_tables([InvoiceLine])

    class NumberSequence(Model):
        name = CharField(unique=True, max_length=32)
        last_value = IntegerField(default=0, constraints=[Check('last_value >= 0')])
        class Meta:
            database = db
            table_name = 'number_sequence'
    db.create_tables([NumberSequence])

    class OpportunityLine(Model):
        position = IntegerField(default=0)
        product = ForeignKeyField(Product, field=Product.id, null=True, on_delete='RESTRICT')
        description = CharField(max_length=500)
        quantity = QuantityField(default=decimal.Decimal('1.000'), constraints=[Check('quantity > 0')])
        unit = CharField(max_length=20, default='piece')
        unit_price = MoneyField(default=decimal.Decimal('0.00'), constraints=[Check('unit_price >= 0')])
        discount_pct = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('discount_pct >= 0 AND discount_pct <= 10000')])
        tax_rate = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('tax_rate >= 0')])
        document = ForeignKeyField(Opportunity, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'opportunity_line'
    db.create_tables([OpportunityLine])

    class OrderLine(Model):
        position = IntegerField(default=0)
        product = ForeignKeyField(Product, field=Product.id, null=True, on_delete='RESTRICT')
        description = CharField(max_length=500)
        quantity = QuantityField(default=decimal.Decimal('1.000'), constraints=[Check('quantity > 0')])
        unit = CharField(max_length=20, default='piece')
        unit_price = MoneyField(default=decimal.Decimal('0.00'), constraints=[Check('unit_price >= 0')])
        discount_pct = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('discount_pct >= 0 AND discount_pct <= 10000')])
        tax_rate = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('tax_rate >= 0')])
        document = ForeignKeyField(Order, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'order_line'
    db.create_tables([OrderLine])

    class QuoteLine(Model):
        position = IntegerField(default=0)
        product = ForeignKeyField(Product, field=Product.id, null=True, on_delete='RESTRICT')
        description = CharField(max_length=500)
        quantity = QuantityField(default=decimal.Decimal('1.000'), constraints=[Check('quantity > 0')])
        unit = CharField(max_length=20, default='piece')
        unit_price = MoneyField(default=decimal.Decimal('0.00'), constraints=[Check('unit_price >= 0')])
        discount_pct = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('discount_pct >= 0 AND discount_pct <= 10000')])
        tax_rate = PercentField(default=decimal.Decimal('0.00'), constraints=[Check('tax_rate >= 0')])
        document = ForeignKeyField(Quote, on_delete='CASCADE')
        class Meta:
            database = db
            table_name = 'quote_line'
    db.create_tables([QuoteLine])

    class Settings(Model):
        company_name = CharField(max_length=200, default='My Company')
        address = TextField(default='')
        vat_id = CharField(max_length=40, default='')
        email = CharField(max_length=254, default='')
        phone = CharField(max_length=40, default='')
        bank_details = TextField(default='')
        logo = BlobField(null=True)
        logo_mime = CharField(null=True, max_length=40)
        currency = CharField(max_length=3, default='EUR')
        quote_validity_days = IntegerField(default=30, constraints=[Check('quote_validity_days BETWEEN 1 AND 3650')])
        payment_terms_days = IntegerField(default=30, constraints=[Check('payment_terms_days BETWEEN 0 AND 3650')])
        payment_terms_text = TextField(default='Payment within 30 days of the invoice date.')
        rot_days_develop = IntegerField(default=14)
        rot_days_propose = IntegerField(default=10)
        rot_days_close = IntegerField(default=7)
        class Meta:
            database = db
            table_name = 'settings'
    db.create_tables([Settings])


def down(migrator, db):
    migrator.migrate(migrator.drop_table('settings'))
    migrator.migrate(migrator.drop_table('quote_line'))
    migrator.migrate(migrator.drop_table('order_line'))
    migrator.migrate(migrator.drop_table('opportunity_line'))
    migrator.migrate(migrator.drop_table('number_sequence'))
    migrator.migrate(migrator.drop_table('invoice_line'))
    migrator.migrate(migrator.drop_table('product'))
    migrator.migrate(migrator.drop_table('invoice'))
    migrator.migrate(migrator.drop_table('order'))
    migrator.migrate(migrator.drop_table('quote'))
    migrator.migrate(migrator.drop_table('opportunity'))
    migrator.migrate(migrator.drop_table('lead'))
    migrator.migrate(migrator.drop_table('history_event'))
    migrator.migrate(migrator.drop_table('contact'))
    migrator.migrate(migrator.drop_table('activity'))
    migrator.migrate(migrator.drop_table('account'))
    migrator.migrate(migrator.drop_table('user'))
