"""Contacts: pages and actions (being built)."""
from flask import Blueprint

bp = Blueprint("contacts", __name__)
