"""Login (throttled per account and per address), logout, changing one's own password, one's API tokens."""
from flask import Blueprint, abort, flash, g, redirect, request, session, url_for

from models import ApiToken, User, ValidationError
from models.security import SecurityEvent, login_blocked, record_login

from .common import render, safe_next

bp = Blueprint("auth", __name__)


def start_session(user):
    """A fresh session for `user` (tied to their session epoch, so a password change ends it)."""
    session.clear()
    session["uid"] = user.id
    session["epoch"] = user.session_epoch
    session.permanent = True


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; on POST check the password and start a session. After 5 failures for
    an account (or 20 from one address) in 15 minutes, logins are refused for a while (429)."""
    error = None
    status = 200
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").replace("\x00", "").strip()[:254]
        if login_blocked(email, request.remote_addr):
            record_throttled(email)
            error = "Too many failed logins. Wait 15 minutes and try again, or ask an administrator."
            status = 429
        else:
            user = User.authenticate(email, request.form.get("password") or "")
            record_login(email, request.remote_addr, user)
            if user is not None:
                start_session(user)
                return redirect(safe_next(request.args.get("next")))
            error = "Wrong email or password."
            status = 401
    return render("auth/login.html", None, status, error=error, email=email, next=request.args.get("next", ""))


def record_throttled(email):
    from models.base import write_transaction
    with write_transaction():
        SecurityEvent.log("login_throttled", email=email)


@bp.post("/logout")
def logout():
    """End the session."""
    if g.get("user") is not None:
        from models.base import write_transaction
        with write_transaction():
            SecurityEvent.log("logout", actor=g.user, user=g.user)
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    """The signed-in user's profile: change the password (every other session of theirs ends)."""
    errors, message, status = {}, None, 200
    if request.method == "POST":
        try:
            g.user.set_password(g.user, request.form.get("password") or "",
                                current_password=request.form.get("current_password") or "")
        except ValidationError as exc:
            errors, status = exc.fields, 422
        else:
            start_session(User.get_by_id(g.user.id))
            message = "Your password is changed. Your other sessions have ended."
    return profile_page(status, errors=errors, message=message)


def profile_page(status=200, **context):
    """The profile page with the user's API tokens (a new token's secret only in the answer that made it)."""
    context.setdefault("errors", {})
    context.setdefault("token_errors", {})
    return render("auth/profile.html", None, status, tokens=list(ApiToken.of_user(g.user)), **context)


@bp.post("/profile/tokens")
def create_token():
    """Create an API token; its secret is shown in this answer only (only its SHA-256 is stored)."""
    name = (request.form.get("name") or "")[:200]
    try:
        token, secret = ApiToken.issue(g.user, name)
    except ValidationError as exc:
        return profile_page(422, token_errors=exc.fields, token_name=name)
    return profile_page(201, new_token=token, new_secret=secret)


@bp.post("/profile/tokens/revoke")
def revoke_token():
    """Revoke one of the user's own API tokens (it stops working at once)."""
    raw = (request.form.get("token") or "").strip()
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        return profile_page(400, token_errors={"token": "Choose a token to revoke."})
    token = ApiToken.of_user(g.user).where(ApiToken.id == int(raw)).first()
    if token is None:
        abort(404)
    if token.revoke(g.user):
        flash(f"API token {token.name} ({token.prefix}…) is revoked.", "info")
    return redirect(url_for("auth.profile") + "#api-tokens", 303)
