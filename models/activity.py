"""Notes, calls, emails, meetings and tasks regarding any record."""
from peewee import BooleanField, CharField, Check, DateField, DateTimeField, ForeignKeyField, IntegerField, TextField

from .base import BaseModel, Param, first, now, prepared, today, write_transaction
from .user import User
from .validation import Cleaner
from .access import owned

KINDS = ("note", "call", "email", "meeting", "task")


class Activity(BaseModel):
    kind = CharField(max_length=16, constraints=[Check("kind IN ('note', 'call', 'email', 'meeting', 'task')")])
    subject = CharField(max_length=200)
    body = TextField(default="")
    due_date = DateField(null=True)
    done = BooleanField(default=False)
    done_at = DateTimeField(null=True)
    record_type = CharField(max_length=32)
    record_id = IntegerField()
    owner = ForeignKeyField(User, null=True, backref="activities", on_delete="SET NULL")
    created_at = DateTimeField(default=now)

    class Meta:
        indexes = ((("record_type", "record_id", "done", "due_date"), False),)

    @classmethod
    def access_rule(cls, user, write=False):
        """Activities belong to the lead or deal they are about: see models/access.py."""
        from .lead import Lead
        from .opportunity import Opportunity
        conditions = [owned(model.owner, user, write) for model in (Lead, Opportunity)]
        if conditions[0] is None:
            return None
        return (((cls.record_type == "lead") & cls.record_id.in_(Lead.select(Lead.id).where(conditions[0])))
                | ((cls.record_type == "opportunity")
                   & cls.record_id.in_(Opportunity.select(Opportunity.id).where(conditions[1]))))

    @property
    def overdue(self):
        return bool(self.due_date and not self.done and self.due_date < today())

    @classmethod
    def add(cls, actor, record, **data):
        """Log an activity on a record; touching the record resets its rot clock."""
        c = Cleaner(data)
        c.choice("kind", KINDS, required=True)
        c.text("subject", 200, required=True)
        c.text("body", 20000, multiline=True)
        c.date("due_date")
        c.boolean("done")
        values = c.raise_if_errors("The activity could not be saved.")
        if values["kind"] == "note":
            values["done"] = True
        with write_transaction():
            activity = cls.create(record_type=record.record_type, record_id=record.id,
                                  owner=actor, done_at=now() if values.get("done") else None,
                                  **values)
            if hasattr(record, "last_activity_at"):
                type(record).update(last_activity_at=now()).where(type(record).id == record.id).execute()
        return activity

    def mark_done(self, actor):
        """Tick a task off (no-op when already done)."""
        if self.done:
            return False
        with write_transaction():
            self.done = True
            self.done_at = now()
            self.save()
        return True

    @classmethod
    def regarding(cls, *records):
        """Activities about any of the records, newest first."""
        condition = None
        for record in records:
            clause = (cls.record_type == record.record_type) & (cls.record_id == record.id)
            condition = clause if condition is None else condition | clause
        return cls.select().where(condition).order_by(cls.created_at.desc(), cls.id.desc())

    NEXT_FIELDS = ("id", "kind", "subject", "due_date", "done", "record_id")  # what a card shows of it

    @classmethod
    def next_open(cls, record_type, record_ids):
        """{record_id: the earliest open activity with a due date} for a page of cards (one query)."""
        if not record_ids:
            return {}
        ids = list(dict.fromkeys(record_ids))
        names = [f"id{i}" for i in range(len(ids))]
        rows = prepared(("next_open", record_type, len(ids)), lambda: (
            cls.select(*[getattr(cls, name) for name in cls.NEXT_FIELDS])
            .where((cls.record_type == record_type) & cls.record_id.in_([Param(n) for n in names])
                   & (cls.done == False) & cls.due_date.is_null(False))  # noqa: E712
            .order_by(cls.due_date, cls.id)), **dict(zip(names, ids)))
        result = {}
        for row in rows:
            result.setdefault(row.record_id, row)
        return result

    @classmethod
    def join_next_open(cls, query, model):
        """`query` of ONE card of `model` with its earliest open activity that has a due date as
        `row.next_activity` (None when there is none), in the same query. A correlated lookup per
        row: for a single record only (a page of cards asks next_open() for its ids, as a database may
        look it up for every row that matches before it sorts and limits)."""
        from peewee import JOIN
        following = cls.alias()
        first_id = (cls.select(cls.id).where((cls.record_type == model.record_type) & (cls.record_id == model.id)
                                             & (cls.done == False) & cls.due_date.is_null(False))  # noqa: E712
                    .order_by(cls.due_date, cls.id).limit(1))
        return (query.select_extend(*[getattr(following, name) for name in cls.NEXT_FIELDS])
                .join_from(model, following, JOIN.LEFT_OUTER, on=(following.id == first_id), attr="next_activity"))


class OnTheBoard:
    """Records shown as cards (leads, opportunities): a class gives `card_query()` (the record with the
    names its card shows); this adds the single card's next activity and loading one card."""

    @classmethod
    def one_card_query(cls):
        """card_query() with the next open activity too: all a single card shows, in one query."""
        return Activity.join_next_open(cls.card_query(), cls)

    @classmethod
    def card(cls, pk):
        """One card's record, loaded like the board loads it (with its next activity)."""
        return first(prepared((cls, "card"), lambda: cls.one_card_query().where(cls.id == Param("pk")), pk=pk))
