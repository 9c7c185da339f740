"""Quotes: pages and actions (being built)."""
from flask import Blueprint

bp = Blueprint("quotes", __name__)
