"""Emailing documents: the texts of the emails that carry them to customers (quote, invoice, payment reminder,
credit note), set in the company settings (empty: the built-in text, models/mail.py), and when an invoice was last
reminded."""
from peewee import DateTimeField, TextField

NAMES = ('email_quote_text', 'email_invoice_text', 'email_reminder_text', 'email_credit_text')


def up(migrator, db):
    present = {column.name for column in db.get_columns('settings')}
    for name in NAMES:
        if name not in present:
            migrator.migrate(migrator.add_column('settings', name, TextField(default='')))
    if 'reminded_at' not in {column.name for column in db.get_columns('invoice')}:
        migrator.migrate(migrator.add_column('invoice', 'reminded_at', DateTimeField(null=True)))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('invoice', 'reminded_at'))
    for name in NAMES:
        migrator.migrate(migrator.drop_column('settings', name))
