"""Documents: quote and invoice PDFs (being built)."""
from flask import Blueprint

bp = Blueprint("documents", __name__)
