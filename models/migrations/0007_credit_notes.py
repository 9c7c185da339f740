"""Credit notes: canceling an issued invoice issues a numbered, frozen credit note (type 381) that voids it."""
from peewee import *


def up(migrator, db):
    class Invoice(Model):
        class Meta:
            database = db
            table_name = 'invoice'

    class CreditNote(Model):
        invoice = ForeignKeyField(Invoice, unique=True, on_delete='RESTRICT')
        number = CharField(max_length=20, unique=True)
        year = IntegerField()
        sequence = IntegerField()
        issue_date = DateField()
        reason = TextField(default='')
        pdf = BlobField(null=True)
        pdf_sha256 = CharField(max_length=64, null=True)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'credit_note'
            indexes = ((('year', 'sequence'), True),)
    db.create_tables([CreditNote])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "credit_note"')
