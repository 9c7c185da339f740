"""Settings: pages and actions (being built)."""
from flask import Blueprint

bp = Blueprint("settings", __name__)
