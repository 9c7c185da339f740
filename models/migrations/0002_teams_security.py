"""Teams (users belong to one), session epochs, the security log and login throttling."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class Team(Model):
        name = CharField(unique=True, max_length=80)
        created_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'team'
    db.create_tables([Team])

    migrator.migrate(
        migrator.add_column('user', 'team_id', ForeignKeyField(Team, null=True, on_delete='SET NULL', field=Team.id)),
        migrator.add_column('user', 'session_epoch', IntegerField(default=0)),
    )

    class SecurityEvent(Model):
        at = DateTimeField(index=True)
        kind = CharField(max_length=40)
        actor = ForeignKeyField(User, null=True, on_delete='SET NULL')
        user = ForeignKeyField(User, null=True, on_delete='SET NULL')
        email = CharField(max_length=254, default='')
        ip = CharField(max_length=64, default='')
        detail = TextField(default='')
        class Meta:
            database = db
            table_name = 'security_event'
    db.create_tables([SecurityEvent])

    class LoginFailure(Model):
        key = CharField(index=True, max_length=300)
        at = DateTimeField(index=True)
        class Meta:
            database = db
            table_name = 'login_failure'
    db.create_tables([LoginFailure])
