"""The service period an invoice is for (a subscription, a project month): printed on the invoice and written
to its e-invoice as the invoicing period (EN 16931 BG-14)."""
from peewee import DateField


def up(migrator, db):
    present = {column.name for column in db.get_columns('invoice')}
    for name in ('period_start', 'period_end'):
        if name not in present:
            migrator.migrate(migrator.add_column('invoice', name, DateField(null=True)))


def down(migrator, db):
    for name in ('period_start', 'period_end'):
        migrator.migrate(migrator.drop_column('invoice', name))
