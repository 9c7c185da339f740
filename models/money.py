"""Line and document arithmetic: half-up rounding at the line, totals are sums of rounded lines."""
from dataclasses import dataclass, field
from decimal import Decimal, ROUND_HALF_UP

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF", "SEK": "kr",
                    "NOK": "kr", "DKK": "kr", "PLN": "zł", "CZK": "Kč", "CAD": "$", "AUD": "$"}
def currency_problem(code):
    """Why `code` cannot be the installation's currency (None when it can): it must be an ISO 4217 currency
    with two decimal places, as amounts are kept in hundredths (a yen price of 1234.56 must not be printed
    and invoiced)."""
    from iso4217 import Currency
    try:
        currency = Currency(code)
    except (ValueError, KeyError, TypeError):
        return f"{code!r} is not an ISO 4217 currency code such as EUR."
    if currency.exponent != 2:
        return (f"{code} ({currency.currency_name}) does not have two decimal places; Pipeline CRM keeps amounts in "
                "hundredths, so it takes currencies that do (EUR, USD, GBP, CHF, SEK…).")
    return None


def round_money(value):
    """Round a Decimal to cents, half-up (the rule used on every line)."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def line_net(quantity, unit_price, discount_pct):
    """round(qty × price × (1 − discount), 2), half-up."""
    return round_money(Decimal(quantity) * Decimal(unit_price) * (HUNDRED - Decimal(discount_pct)) / HUNDRED)


def line_tax(net, tax_rate):
    """Tax of one line, rounded half-up at the line."""
    return round_money(Decimal(net) * Decimal(tax_rate) / HUNDRED)


@dataclass
class Totals:
    """Document totals: net, tax, gross and the breakdown per tax rate (rate -> [net, tax])."""

    net: Decimal = ZERO
    tax: Decimal = ZERO
    exempt_net: Decimal = ZERO  # of lines exempt from VAT on a legal ground (within the 0 % breakdown)
    by_rate: dict = field(default_factory=dict)

    @property
    def gross(self):
        return self.net + self.tax

    def add(self, net, tax, rate):
        self.net += net
        self.tax += tax
        bucket = self.by_rate.setdefault(Decimal(rate), [ZERO, ZERO])
        bucket[0] += net
        bucket[1] += tax


def document_totals(lines):
    """Totals over objects with quantity, unit_price, discount_pct and tax_rate."""
    totals = Totals()
    for line in lines:
        net = line_net(line.quantity, line.unit_price, line.discount_pct)
        totals.add(net, line_tax(net, line.tax_rate), line.tax_rate)
        if getattr(line, "tax_exemption", ""):
            totals.exempt_net += net
    totals.by_rate = dict(sorted(totals.by_rate.items()))
    return totals


def format_money(amount, currency="EUR"):
    """'€ 1,234.50' — the currency symbol and grouped digits, for screens and documents."""
    if amount is None:
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    sign = "−" if amount < 0 else ""
    return f"{sign}{symbol}\u00a0{abs(Decimal(amount)):,.2f}"
