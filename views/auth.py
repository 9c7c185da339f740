"""Login (throttled per account and per address), logout, and changing one's own password."""
from flask import Blueprint, flash, g, redirect, request, session, url_for

from models import User, ValidationError
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
        email = (request.form.get("email") or "").strip()[:254]
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
    return render("auth/profile.html", None, status, errors=errors, message=message)
