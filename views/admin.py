"""Administration (admins only): users, teams and the security log."""
from flask import Blueprint, abort, flash, g, redirect, request, url_for

from peewee import JOIN

from models import DomainError, SecurityEvent, Team, User, ValidationError
from models.access import require_admin
from models.user import ROLES

from .common import render

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def admins_only():
    require_admin(g.user)


def _user(user_id):
    user = User.get_or_none(User.id == user_id)
    if user is None:
        abort(404)
    return user


def _page(status=200, errors=None, values=None, edit_errors=None, edited=None):
    users = list(User.select(User, Team.id, Team.name).join(Team, JOIN.LEFT_OUTER, on=(User.team == Team.id))
                 .order_by(User.active.desc(), User.name))
    teams = list(Team.select().order_by(Team.name))
    return render("admin/users.html", None, status, users=users, teams=teams, roles=ROLES, errors=errors or {},
                  values=values or {}, edit_errors=edit_errors or {}, edited=edited)


@bp.get("/users")
def users():
    """Every user with role, team and status; forms to add users and teams."""
    return _page()


@bp.post("/users")
def create_user():
    """Create a user with a first password the admin hands over (they change it on their profile)."""
    form = {k: (request.form.get(k) or "") for k in ("email", "name", "role", "team", "password")}
    try:
        user = User.create_user(form["email"], form["password"], name=form["name"], role=form["role"] or "seller",
                                team=form["team"] or None, actor=g.user)
    except ValidationError as exc:
        form.pop("password")
        return _page(422, errors=exc.fields, values=form)
    flash(f"{user.name} can now log in as {user.email}.", "info")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>")
def update_user(user_id):
    """Change a user's role, team, name or active flag (deactivating ends their sessions)."""
    user = _user(user_id)
    form = request.form
    missing = {name: f"Give the {name}." for name in ("name", "role") if not form.get(name)}
    if missing:  # a partial form must not deactivate or demote anyone by omission
        return _page(422, edit_errors=missing, edited=user.id)
    try:
        changed = user.administer(g.user, role=form.get("role"), team=form.get("team", ""),
                                  name=form.get("name"), active=form.get("active") == "1")
    except ValidationError as exc:
        return _page(422, edit_errors=exc.fields, edited=user.id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.users"))
    flash(f"{user.name}: saved." if changed else f"{user.name}: nothing changed.", "info")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id):
    """Set a new password for a user (their sessions end)."""
    user = _user(user_id)
    try:
        user.set_password(g.user, request.form.get("password") or "")
    except ValidationError as exc:
        return _page(422, edit_errors={"password": exc.fields.get("password", exc.message)}, edited=user.id)
    flash(f"{user.name}: password reset; their sessions have ended.", "info")
    return redirect(url_for("admin.users"))


@bp.post("/teams")
def create_team():
    try:
        team = Team.create_team(g.user, request.form.get("name"))
    except ValidationError as exc:
        return _page(422, errors={"team_name": exc.fields.get("name", exc.message)},
                     values={"team_name": request.form.get("name", "")})
    flash(f"Team {team.name} created.", "info")
    return redirect(url_for("admin.users"))


@bp.get("/security")
def security_log():
    """The latest security events: logins and failures, role changes, invoice issue/cancel, exports."""
    events = list(SecurityEvent.select().order_by(SecurityEvent.at.desc(), SecurityEvent.id.desc()).limit(300))
    names = {u.id: u.name for u in User.select(User.id, User.name)}
    return render("admin/security.html", None, events=events, names=names)
