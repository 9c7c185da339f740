"""Personal API tokens (the JSON API under /api/v1): only the SHA-256 of each secret is stored."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class ApiToken(Model):
        user = ForeignKeyField(User, on_delete='CASCADE')
        name = CharField(max_length=80)
        prefix = CharField(max_length=24)
        secret_hash = CharField(max_length=64, unique=True)
        created_at = DateTimeField()
        last_used_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)
        class Meta:
            database = db
            table_name = 'api_token'
    db.create_tables([ApiToken])


def down(migrator, db):
    db.execute_sql('DROP TABLE IF EXISTS "api_token"')
