"""Who may see and change which records: the one scoping rule every record query goes through.

- An admin sees and changes everything, and manages users, teams and settings.
- A manager sees and changes the records of their team (their own, their teammates', unowned ones)
  and may reassign owners within the team.
- A seller sees their team's records and changes their own and unowned ones.
- A user without a team sees and changes only their own records and unowned ones.
Quotes, orders and invoices belong to their deal's owner; activities to the record they are about.
The product catalog is shared by everyone.
"""
from peewee import Expression

from .base import Param
from .errors import DomainError


class Forbidden(DomainError):
    """The user may see the record but not change it (or may not use an admin function)."""

    status = 403


def scope_key(user, write=False):
    """'all', 'team' or 'own': how far the user's reach goes (part of prepared queries' keys)."""
    if user is None:
        return "none"
    if user.role == "admin":
        return "all"
    if user.team_id and (not write or user.role == "manager"):
        return "team"
    return "own"


def scope_values(user):
    """The values of the Param()s in scope conditions (for prepared queries)."""
    return {"scope_user": user.id if user else 0, "scope_team": user.team_id if user else 0}


def owned(owner_field, user, write=False):
    """Condition on an owner column: the rows `user` may see (write=False) or change (write=True).
    None means no restriction."""
    from .user import User
    key = scope_key(user, write)
    if key == "all":
        return None
    values = scope_values(user)
    if key == "none":
        return owner_field.is_null() & owner_field.is_null(False)
    condition = owner_field.is_null() | (owner_field == Param("scope_user", values["scope_user"]))
    if key == "team":
        team = User.select(User.id).where(User.team == Param("scope_team", values["scope_team"]))
        condition = condition | owner_field.in_(team)
    return condition


def through_deal(deal_field, user, write=False):
    """Condition on a document's deal column: documents of deals the user may see (or change)."""
    from .opportunity import Opportunity
    condition = owned(Opportunity.owner, user, write)
    if condition is None:
        return None
    return deal_field.in_(Opportunity.select(Opportunity.id).where(condition))


def visible_where(model, user, write=False):
    """The condition selecting the rows of `model` that `user` may see (or change); None: all of them."""
    rule = getattr(model, "access_rule", None)
    if rule is None:
        return None
    return rule(user, write)


def visible(model, user, write=False, query=None):
    """A SELECT (`query`, by default of all columns) of the rows of `model` the user may see (or change)."""
    query = model.select() if query is None else query
    condition = visible_where(model, user, write)
    return query if condition is None else query.where(condition)


def may_change(record, user):
    """True when `user` may change `record` (as the access rule says)."""
    model = type(record)
    condition = visible_where(model, user, write=True)
    return condition is None or model.select().where(condition & (model._meta.primary_key == record.id)).exists()


def combine(condition, extra):
    """`condition & extra`, where either may be None (no restriction)."""
    if condition is None:
        return extra
    if extra is None:
        return condition
    return Expression(condition, "AND", extra)


def load(model, pk, user, write=False, select=None):
    """The record `pk` if the user may see it (None otherwise: callers answer 404 as if it did not
    exist); Forbidden when write=True and the user may only read it. `select` names a query method of
    the model to load it with (e.g. "card_query": with the names its card shows)."""
    from .base import first, prepared
    values = dict(scope_values(user), pk=pk)

    def run(for_write):  # a prepared query: every request that names a record asks this
        return first(prepared((model, "load", scope_key(user, for_write), select), lambda: visible(
            model, user, for_write, getattr(model, select)() if select else None).where(
            model._meta.primary_key == Param("pk")), **values))
    if not write:
        return run(False)
    record = run(True)  # the usual case, a user changing what they may change: one query
    if record is not None or scope_key(user, True) == scope_key(user, False):
        return record
    record = run(False)
    if record is None:
        return None
    raise Forbidden(f"You can read this {model.__name__.lower()} but not change it: "
                    f"only {owner_name(record)} or a manager of the team can.")


def owner_name(record):
    """The name of whoever owns a record (through its deal for documents)."""
    owner = owner_of(record)
    return owner.name if owner is not None else "its owner"


def owner_of(record):
    from .user import User
    if hasattr(record, "owner_id"):
        owner_id = record.owner_id
    elif getattr(record, "opportunity_id", None):
        from .opportunity import Opportunity
        deal = Opportunity.get_or_none(Opportunity.id == record.opportunity_id)
        owner_id = deal.owner_id if deal else None
    else:
        owner_id = None
    return User.get_or_none(User.id == owner_id) if owner_id else None


def visible_owners(user):
    """Active users whose records `user` can see (everyone for an admin, else the team and themselves)."""
    from .user import User
    query = User.select(User.id, User.name).where(User.active == True)  # noqa: E712
    if user.role != "admin":
        mine = User.id == user.id
        query = query.where(mine | (User.team == user.team_id) if user.team_id else mine)
    return query.order_by(User.name)


def assignable_owners(user):
    """Users the actor may make owner of a record: anyone active for an admin, the team for a
    manager, only themselves otherwise."""
    from .user import User
    query = User.select(User.id, User.name).where(User.active == True)  # noqa: E712
    if user.role == "admin":
        return query.order_by(User.name)
    if user.role == "manager" and user.team_id:
        return query.where((User.team == user.team_id) | (User.id == user.id)).order_by(User.name)
    return query.where(User.id == user.id)


def user_id_of(value):
    """A user given as User or id -> the id (None stays None)."""
    return getattr(value, "id", value)


def check_owner_change(actor, old_owner_id, new_owner_id):
    """Refuse an owner change the actor may not make (reassigning is for managers and admins)."""
    if old_owner_id == new_owner_id or actor is None:
        return
    if new_owner_id is None:
        if actor.role in ("manager", "admin"):
            return
        raise Forbidden("Only a manager can release a record to the pool.", {"owner": "Ask a manager to do it."})
    allowed = {u.id for u in assignable_owners(actor)}
    if actor.role in ("manager", "admin"):
        if new_owner_id not in allowed:
            raise Forbidden("That user is not in your team.", {"owner": "Choose someone from your team."})
        return
    if old_owner_id is None and new_owner_id == actor.id:
        return  # a seller takes an unowned record from the pool
    raise Forbidden("Only a manager can reassign the owner.", {"owner": "Ask your manager to reassign it."})


def require_admin(user):
    if user is None or user.role != "admin":
        raise Forbidden("Only an administrator can do this.")
