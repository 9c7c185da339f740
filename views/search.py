"""Search: pages and actions (being built)."""
from flask import Blueprint

bp = Blueprint("search", __name__)
