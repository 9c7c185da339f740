"""Invoices: pages and actions (being built)."""
from flask import Blueprint

bp = Blueprint("invoices", __name__)
