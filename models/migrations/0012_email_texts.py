"""The texts of the emails that carry documents to customers (quote, invoice, payment reminder), set in the
company settings; empty means the built-in text (models/mail.py)."""
from peewee import TextField

NAMES = ('email_quote_text', 'email_invoice_text', 'email_reminder_text')


def up(migrator, db):
    present = {column.name for column in db.get_columns('settings')}
    for name in NAMES:
        if name not in present:
            migrator.migrate(migrator.add_column('settings', name, TextField(default='')))


def down(migrator, db):
    for name in NAMES:
        migrator.migrate(migrator.drop_column('settings', name))
