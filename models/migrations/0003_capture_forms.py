"""Web-to-lead capture forms; leads get a campaign tag."""
from peewee import *


def up(migrator, db):
    class User(Model):
        class Meta:
            database = db
            table_name = 'user'

    class Team(Model):
        class Meta:
            database = db
            table_name = 'team'

    class CaptureForm(Model):
        key = CharField(max_length=40, unique=True)
        name = CharField(max_length=120)
        fields = CharField(max_length=300, default='name,email,company,notes')
        required = CharField(max_length=300, default='name,email')
        thank_you = TextField(default='')
        owner = ForeignKeyField(User, null=True, on_delete='SET NULL', backref='+')
        team = ForeignKeyField(Team, null=True, on_delete='SET NULL', backref='+')
        last_assigned = ForeignKeyField(User, null=True, on_delete='SET NULL', backref='+')
        source = CharField(max_length=20, default='web form')
        campaign = CharField(max_length=80, default='')
        active = BooleanField(default=True)
        submissions = IntegerField(default=0)
        duplicates = IntegerField(default=0)
        spam = IntegerField(default=0)
        created_by = ForeignKeyField(User, null=True, on_delete='SET NULL', backref='+')
        created_at = DateTimeField()
        updated_at = DateTimeField()
        class Meta:
            database = db
            table_name = 'capture_form'
    db.create_tables([CaptureForm])

    migrator.migrate(migrator.add_column('lead', 'campaign', CharField(max_length=80, default='')))


def down(migrator, db):
    migrator.migrate(migrator.drop_column('lead', 'campaign'))
    db.execute_sql('DROP TABLE capture_form')
