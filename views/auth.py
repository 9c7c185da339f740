"""Login and logout."""
from flask import Blueprint, flash, redirect, request, session, url_for

from models import User

from .common import render, safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; on POST check the password and start a session."""
    error = None
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()[:254]
        user = User.authenticate(email, request.form.get("password") or "")
        if user is not None:
            session.clear()
            session["uid"] = user.id
            session.permanent = True
            return redirect(safe_next(request.args.get("next")))
        error = "Wrong email or password."
    return render("auth/login.html", None, 401 if error else 200, error=error, email=email,
                  next=request.args.get("next", ""))


@bp.post("/logout")
def logout():
    """End the session."""
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
