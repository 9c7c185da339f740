"""Accounts: pages and actions (being built)."""
from flask import Blueprint

bp = Blueprint("accounts", __name__)
