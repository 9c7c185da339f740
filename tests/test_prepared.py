"""Prepared queries (models/base.py) build records exactly as peewee does, on both databases."""
from models import MODELS, db
from models.base import Param, first, prepared
from models.demo import seed_demo


def _same_record(ours, theirs):
    assert type(ours) is type(theirs)
    assert ours.__data__ == theirs.__data__
    assert {k: type(v) for k, v in ours.__data__.items()} == {k: type(v) for k, v in theirs.__data__.items()}
    assert not ours.is_dirty() and ours.__rel__ == {}


def test_a_prepared_select_builds_every_model_as_peewee_does(database):
    """Every record of every model of the demo company (every field type, NULLs, booleans, dates, money
    in minor units), read through a prepared query, equals peewee's own reading of it — also on the
    second run, when the rows are built without peewee's cursor wrapper."""
    assert seed_demo() is True
    covered = []
    with db.connection_context():
        for model in MODELS:
            expected = list(model.select().order_by(model._meta.primary_key))
            if not expected:  # (log-in failures, API tokens, imports: none in the demo)
                continue
            covered.append(model.__name__)
            for run in range(2):
                rows = list(prepared(("test-all", model), lambda m=model: m.select().order_by(m._meta.primary_key)))
                assert len(rows) == len(expected)
                for ours, theirs in zip(rows, expected):
                    _same_record(ours, theirs)
            one = first(prepared(("test-one", model), lambda m=model: m.select().where(
                m._meta.primary_key == Param("pk")), pk=expected[-1].get_id()))
            _same_record(one, expected[-1])
            assert first(prepared(("test-one", model), lambda: None, pk=-1)) is None
    assert {"User", "Settings", "Lead", "Opportunity", "Quote", "QuoteLine", "Invoice", "Activity",
            "HistoryEvent"} <= set(covered)
