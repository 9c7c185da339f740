"""Domain errors: each one says which fields are missing or wrong (field -> message)."""


class DomainError(Exception):
    """A refused change. `fields` maps an input name to the message shown next to it."""

    status = 422

    def __init__(self, message, fields=None, **context):
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})
        self.context = context

    def __str__(self):
        if self.fields:
            details = "; ".join(f"{k}: {v}" for k, v in self.fields.items())
            return f"{self.message} ({details})"
        return self.message


class ValidationError(DomainError):
    """Input that is malformed or out of range (a value was given but is wrong)."""


class RuleNotMet(DomainError):
    """A stage rule does not hold; `fields` lists exactly what must be supplied to complete the step.

    `step` names the stage whose rule failed (for a skip it is the first unmet step), `defaults`
    holds prefilled values for the dialog, `choices` holds options such as duplicate matches and
    `optional` names fields the dialog may also offer (a competitor, a note).
    """

    def __init__(self, message, fields=None, step=None, defaults=None, choices=None, optional=(), **context):
        super().__init__(message, fields, **context)
        self.step = step
        self.optional = tuple(optional)
        self.defaults = dict(defaults or {})
        self.choices = dict(choices or {})


class NotAllowed(DomainError):
    """A change that can never succeed from the record's current state (no input would help)."""

    status = 409


class StaleVersion(DomainError):
    """The record changed since the caller read it; `record` is the fresh one, `changed_by` who did it."""

    status = 409

    def __init__(self, record, changed_by=None):
        who = changed_by or "someone else"
        super().__init__(f"This record was changed by {who} since you loaded it.")
        self.record = record
        self.changed_by = changed_by


class NotFound(DomainError):
    """An id that does not name a record of the expected type."""

    status = 404
