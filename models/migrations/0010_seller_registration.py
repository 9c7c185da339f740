"""The company's tax number (when it has no VAT id, or beside it), its register entry and the legal
information business letters must state (managing directors, registered office): printed in the documents'
footer and written to the e-invoice (EN 16931 BT-32, BT-30, BT-33)."""
from peewee import CharField, TextField

COLUMNS = {'tax_number': CharField(max_length=40, default=''),
           'company_register': CharField(max_length=120, default=''),
           'legal_info': TextField(default='')}


def up(migrator, db):
    present = {column.name for column in db.get_columns('settings')}
    for name, field in COLUMNS.items():
        if name not in present:
            migrator.migrate(migrator.add_column('settings', name, field))


def down(migrator, db):
    for name in COLUMNS:
        migrator.migrate(migrator.drop_column('settings', name))
