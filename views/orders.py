"""Orders: pages and actions (being built)."""
from flask import Blueprint

bp = Blueprint("orders", __name__)
