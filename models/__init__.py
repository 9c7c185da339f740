"""Pipeline CRM models. MODELS lists every table in creation order."""
from .activity import Activity
from .api_token import ApiToken
from .base import db
from .capture import CaptureForm
from .catalog import Product
from .errors import DomainError, NotAllowed, NotFound, RuleNotMet, StaleVersion, ValidationError
from .history import HistoryEvent
from .imports import ImportJob, ImportResult
from .invoice import CreditNote, Invoice, InvoiceLine
from .lead import Lead
from .opportunity import COLUMNS, Move, Opportunity, OpportunityLine
from .order import Order, OrderLine
from .party import Account, Contact
from .quote import Quote, QuoteLine
from .settings import NumberSequence, Settings
from .security import LoginFailure, SecurityEvent
from .user import Team, User

MODELS = [Team, User, Settings, NumberSequence, Account, Contact, Product, Lead, Opportunity, OpportunityLine,
          Quote, QuoteLine, Order, OrderLine, Invoice, InvoiceLine, CreditNote, Activity, HistoryEvent, SecurityEvent, LoginFailure,
          CaptureForm, ApiToken, ImportJob, ImportResult]

__all__ = ["MODELS", "db", "Activity", "Product", "HistoryEvent", "CreditNote", "Invoice", "InvoiceLine", "Lead",
           "Opportunity", "OpportunityLine", "Order", "OrderLine", "Account", "Contact", "Quote", "QuoteLine",
           "NumberSequence", "Settings", "User", "Team", "ImportJob", "ImportResult", "SecurityEvent", "LoginFailure", "CaptureForm", "ApiToken", "COLUMNS", "Move", "DomainError", "NotAllowed", "NotFound",
           "RuleNotMet", "StaleVersion", "ValidationError"]
