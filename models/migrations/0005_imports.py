"""Imports: a job per uploaded file (mapping, choices, position reached, counts) and one result per row."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class ImportJob(Model):
        owner = ForeignKeyField(User, on_delete='CASCADE')
        kind = CharField(max_length=16, default='lead')
        source_format = CharField(max_length=8, default='csv')
        filename = CharField(max_length=200, default='')
        stored_name = CharField(max_length=100, default='')
        size = BigIntegerField(default=0)
        encoding = CharField(max_length=20, default='utf-8')
        delimiter = CharField(max_length=1, default=',')
        header_json = TextField(default='[]')
        sample_json = TextField(default='[]')
        mapping_json = TextField(default='[]')
        policy = CharField(max_length=8, default='skip')
        mode = CharField(max_length=8, default='valid')
        status = CharField(max_length=12, default='uploaded')
        phase = CharField(max_length=12, default='')
        data_offset = BigIntegerField(default=0)
        position = BigIntegerField(default=0)
        rows_read = IntegerField(default=0)
        created_count = IntegerField(default=0)
        updated_count = IntegerField(default=0)
        skipped_count = IntegerField(default=0)
        invalid_count = IntegerField(default=0)
        message = TextField(default='')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        finished_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = 'import_job'
            indexes = ((('owner', 'created_at'), False),)
    db.create_tables([ImportJob])

    class ImportResult(Model):
        job = ForeignKeyField(ImportJob, on_delete='CASCADE')
        row = IntegerField()
        outcome = CharField(max_length=8)
        record_id = IntegerField(null=True)
        label = CharField(max_length=200, default='')
        message = TextField(default='')

        class Meta:
            database = db
            table_name = 'import_result'
            indexes = ((('job', 'row'), False), (('job', 'record_id'), False))
    db.create_tables([ImportResult])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS import_result')
    db.execute_sql('DROP TABLE IF EXISTS import_job')
