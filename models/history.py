"""Append-only history: who changed what, when, from what to what."""
import datetime
import json
from decimal import Decimal

from peewee import JOIN, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from .base import BaseModel, Param, insert_row, now, prepared
from .user import User


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if hasattr(value, "id") and hasattr(value, "_meta"):
        return value.id
    return value


class HistoryEvent(BaseModel):
    at = DateTimeField(default=now, index=True)
    actor = ForeignKeyField(User, null=True, backref="events", on_delete="SET NULL")
    record_type = CharField(max_length=32)
    record_id = IntegerField()
    action = CharField(max_length=32)
    from_stage = CharField(max_length=16, null=True)
    to_stage = CharField(max_length=16, null=True)
    changes = TextField(null=True)
    note = TextField(null=True)

    class Meta:
        indexes = ((("record_type", "record_id", "at"), False),)

    @classmethod
    def write(cls, actor, record, action, changes=None, from_stage=None, to_stage=None, note=None):
        """Append one event about `record` (call inside the transaction that made the change)."""
        payload = None
        if changes:
            payload = json.dumps({k: [_plain(a), _plain(b)] for k, (a, b) in changes.items()},
                                 sort_keys=True)
        event = cls(at=now(), actor=actor, record_type=record.record_type, record_id=record.id,
                    action=action, changes=payload, from_stage=from_stage, to_stage=to_stage, note=note)
        event.id = insert_row(event)
        return event

    @property
    def change_map(self):
        """The changes as {field: [old, new]}."""
        return json.loads(self.changes) if self.changes else {}

    @classmethod
    def about(cls, *records):
        """Events about any of the given records, newest first."""
        query = cls.select()
        condition = None
        for record in records:
            clause = (cls.record_type == record.record_type) & (cls.record_id == record.id)
            condition = clause if condition is None else condition | clause
        return query.where(condition).order_by(cls.at.desc(), cls.id.desc())

    @classmethod
    def last_actor_name(cls, record):
        """Name of whoever last changed the record, for 'changed by …' messages."""
        event = (cls.select(cls, User).join(User, on=(cls.actor == User.id), join_type=JOIN.LEFT_OUTER)
                 .where((cls.record_type == record.record_type) & (cls.record_id == record.id))
                 .order_by(cls.id.desc()).first())
        if event and event.actor_id:
            return event.actor.name
        return None


class Tracked:
    """Mixin for records that carry a version and write history on every real change."""

    record_type = None

    def check_version(self, expected_version):
        """Refuse a change based on a stale read (expected_version None: caller does not care)."""
        if expected_version in (None, ""):
            return
        try:
            expected = int(expected_version)
        except (TypeError, ValueError):
            expected = -1
        if expected != self.version:
            raise_stale(self)

    def apply_changes(self, values):
        """Set the given fields; return {field: (old, new)} for those that really changed."""
        changes = {}
        for name, new in values.items():
            old = getattr(self, name + "_id", None) if isinstance(new, BaseModel) else getattr(self, name)
            compare_new = new.id if isinstance(new, BaseModel) else new
            if old != compare_new:
                changes[name] = (old, compare_new)
                setattr(self, name, new)
        return changes

    def edit_locked_reason(self):
        """Why fields cannot be edited now (None: they can)."""
        return None

    def prepare_update(self, values):
        """Adjust cleaned values before they are applied (inside the transaction)."""
        return values

    def after_update(self, changes):
        """Derived changes that follow from `changes` (inside the transaction)."""
        return {}

    def update_fields(self, actor, expected_version=None, **data):
        """Edit fields validated by the model's clean(); one history event with old -> new.

        Returns True when something changed; a stale expected_version raises StaleVersion.
        """
        from .base import write_transaction
        from .errors import NotAllowed
        values = self.clean(data, partial=True)
        with write_transaction():
            self.reload_locked()
            self.check_version(expected_version)
            reason = self.edit_locked_reason()
            if reason:
                raise NotAllowed(reason)
            changes = self.apply_changes(self.prepare_update(values))
            if "owner" in changes:
                from .access import user_id_of, check_owner_change
                check_owner_change(actor, *(user_id_of(v) for v in changes["owner"]))
            changes.update(self.after_update(changes))
            if not changes:
                return False
            self.save_version()
            HistoryEvent.write(actor, self, "update", changes)
        return True

    def save_version(self):
        """Bump the version and save (inside the write transaction)."""
        self.version += 1
        self.updated_at = now()
        cls = type(self)
        fields = cls._meta.fields
        pk = cls._meta.primary_key.name
        dirty = self._dirty | {"version", "updated_at"}
        names = tuple(sorted(name for name in self.__data__ if name != pk and name in dirty and name in fields))
        prepared((cls, "save", names), lambda: cls.update(
            {fields[name]: Param(name, converter=fields[name].db_value) for name in names}).where(
            cls._meta.primary_key == Param(pk)), **{name: self.__data__[name] for name in names + (pk,)})
        self._dirty.clear()


def raise_stale(record):
    from .errors import StaleVersion
    raise StaleVersion(record, HistoryEvent.last_actor_name(record))
