"""VAT exemptions (EN 16931 category E): a 0 % product or line may name the legal ground of its exemption."""
from peewee import *  # noqa: F401,F403

TABLES = ('product', 'opportunity_line', 'quote_line', 'order_line', 'invoice_line')


def up(migrator, db):
    for table in TABLES:
        migrator.migrate(migrator.add_column(table, 'tax_exemption', CharField(max_length=200, default='')))


def down(migrator, db):
    for table in TABLES:
        migrator.migrate(migrator.drop_column(table, 'tax_exemption'))
