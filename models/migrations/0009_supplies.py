"""Goods or services on products and document lines: at 0 % to an EU business abroad, goods are an
intra-Community supply (EN 16931 category K) and services are reverse charged (AE). Existing rows become
services (what the VAT categories assumed before); goods need to be marked on their products."""
from peewee import *  # noqa: F401,F403

TABLES = ('product', 'opportunity_line', 'quote_line', 'order_line', 'invoice_line')


def up(migrator, db):
    for table in TABLES:  # (a development database of 2026-11-30 may have the columns from 0008 already)
        if 'supply' not in {column.name for column in db.get_columns(table)}:
            migrator.migrate(migrator.add_column(table, 'supply', CharField(max_length=8, default='services')))


def down(migrator, db):
    for table in TABLES:
        migrator.migrate(migrator.drop_column(table, 'supply'))
