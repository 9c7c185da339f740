"""WSGI entry of the floor app for gunicorn (bench_move.py)."""
from common import bare_app

app = bare_app()
