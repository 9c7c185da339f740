import time, pytest
from models import NumberSequence, db
import test_numbering as tn

def racy(cls, name):
    cls.insert(name=name, last_value=0).on_conflict_ignore().execute()
    value = cls.get(cls.name == name).last_value + 1
    time.sleep(0.002)
    cls.update(last_value=value).where(cls.name == name).execute()
    return value

@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_racy(monkeypatch, postgres_url, database, seller):
    monkeypatch.setattr(NumberSequence, "next_value", classmethod(racy))
    tn.test_gapless_numbers_with_concurrent_threads_on_postgresql.__wrapped__ if hasattr(tn.test_gapless_numbers_with_concurrent_threads_on_postgresql, "__wrapped__") else None
    tn.test_gapless_numbers_with_concurrent_threads_on_postgresql(postgres_url, database, seller)
