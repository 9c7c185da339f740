"""Imports: upload a file, map its columns, preview, run chunk by chunk (htmx polling), read the report."""
import os
import secrets

from flask import Blueprint, Response, abort, current_app, g, redirect, request, session, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from models import DomainError, ValidationError
from models.base import connection
from models.imports import (CHUNK_ROWS, DUPLICATE_RULES, KIND_FIELDS, KIND_LABELS, KINDS, MAX_BYTES, MAX_FILES, MODES,
                            POLICIES, FileProblem, ImportJob, check_file_count, duplicate_text)

from .common import is_htmx, render

bp = Blueprint("imports", __name__)


def _directory():
    return os.path.join(current_app.config["INSTANCE_PATH"], "imports")


def _max_bytes():
    return int(current_app.config.get("IMPORT_MAX_BYTES") or MAX_BYTES)


@bp.url_value_preprocessor
def allow_import_uploads(endpoint, values):
    """Uploads of a signed-in session may be larger than the app's general request limit (set before
    the CSRF check reads the form)."""
    if endpoint == "imports.upload" and session.get("uid") is not None:
        request.max_content_length = _max_bytes() + 64 * 1024
        request.max_form_parts = 4 * MAX_FILES  # a folder of vCards is one part per file; too many: said below


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc):
    """An upload over the import limit: the upload form again with the limit named (413)."""
    if g.get("user") is None:
        from models import User, db
        db.connect(reuse_if_open=True)
        g.user = User.signed_in(session.get("uid"), session.get("epoch"))
    return _upload_page({"file": _too_large_message()}, _too_large_message(), 413, request.args.get("kind") or "lead")


def _job(job_id):
    job = ImportJob.for_user(job_id, g.user)
    if job is None:
        abort(404)
    return job


def _kind_choices():
    return [(k, KIND_LABELS[k][1].capitalize()) for k in KINDS]


def _upload_page(errors=None, message=None, status=200, kind="lead"):
    return render("imports/index.html", "imports/_upload.html", status, errors=errors or {}, message=message,
                  kind=kind if kind in KINDS else "lead", kinds=_kind_choices(),
                  jobs=list(ImportJob.recent(g.user)) if g.get("user") is not None else [],
                  max_mb=_max_bytes() // (1024 * 1024))


@bp.get("/imports")
def index():
    """The upload form (what to import preselected from the list page's link) and the recent imports."""
    return _upload_page(kind=request.args.get("kind", "lead"))


@bp.post("/imports")
def upload():
    """Receive a file, check it (size, encoding, delimiter, header) and open its mapping step."""
    kind = request.form.get("kind", "")
    files = [f for f in request.files.getlist("file") if f.filename]
    if not files:
        return _upload_page({"file": "Choose a file to upload."}, "Choose a file to upload.", 400, kind)
    directory = _directory()
    os.makedirs(directory, exist_ok=True)
    uploads = []
    try:
        check_file_count(len(files))  # before any is written to disk
        total = 0
        for file in files:
            temporary = os.path.join(directory, f"upload-{secrets.token_hex(8)}.part")
            uploads.append((temporary, os.path.basename(file.filename.replace("\\", "/"))))
            file.save(temporary)
            total += os.path.getsize(temporary)
            if total > _max_bytes():
                raise FileProblem(_too_large_message(), 413)
        ImportJob.purge_abandoned(directory)
        job = ImportJob.create_from_uploads(g.user, kind, uploads, directory)
    except (FileProblem, ValidationError) as exc:
        return _upload_page(exc.fields, exc.message, getattr(exc, "status", 422), kind)
    finally:
        for temporary, _ in uploads:
            if os.path.exists(temporary):
                os.remove(temporary)
    return redirect(url_for("imports.detail", job_id=job.id), 303)


def _too_large_message():
    return (f"The file is too large: imports take files of at most {_max_bytes() // (1024 * 1024) or 1} MB. "
            "Split it into smaller files.")


def _context(job, errors=None, message=None, mapping=None):
    """What the job's fragment shows at its current step (`mapping`: a refused mapping, shown as sent)."""
    errors = errors or {}
    context = {"job": job, "errors": errors, "message": message,
               "kinds": [(k, label) for k, label in _kind_choices() if k in job.kinds],
               "policies": POLICIES, "modes": MODES, "duplicate_rule": DUPLICATE_RULES[job.kind],
               "fields": KIND_FIELDS[job.kind], "duplicate_text": duplicate_text,
               "shown_mapping": mapping or job.mapping, "preview": None}
    if job.status == "mapped" and mapping is None:
        context["preview"] = job.preview()
        context["mapped_fields"] = [f for f in KIND_FIELDS[job.kind] if f.name in job.mapping
                                    and f.name not in ("first_name", "last_name")]
    return context


def _show(job, status=200, **extra):
    return render("imports/job.html", "imports/_job.html", status, **_context(job, **extra))


def _answer(job):
    """After a step of the import: the job's fragment for htmx, else back to its page (POST → GET)."""
    if not is_htmx():
        return redirect(url_for("imports.detail", job_id=job.id), 303)
    return _show(job)


@bp.get("/imports/<int:job_id>")
def detail(job_id):
    """The import at its current step: mapping and preview, progress, or the report."""
    return _show(_job(job_id))


@bp.post("/imports/<int:job_id>/mapping")
def mapping(job_id):
    """Save the kind of records and the column mapping (a new kind re-guesses it); then the preview."""
    job = _job(job_id)
    kind, mapping = request.form.get("kind", job.kind), None
    try:
        if kind != job.kind:
            job.choose_kind(kind)
        else:
            mapping = [request.form.get(f"col{i}", "") for i in range(len(job.header))]
            job.set_mapping(kind, mapping)
    except DomainError as exc:
        if exc.status != 422:
            raise
        return _show(job, 422, errors=exc.fields, message=exc.message, mapping=mapping)
    return _answer(job)


@bp.post("/imports/<int:job_id>/start")
def start(job_id):
    """Fix the duplicate policy and mode, and start the import (it then runs chunk by chunk)."""
    job = _job(job_id)
    try:
        job.start(g.user, request.form.get("policy", ""), request.form.get("mode", ""))
    except ValidationError as exc:
        return _show(job, 422, errors=exc.fields, message=exc.message)
    return _answer(job)


@bp.post("/imports/<int:job_id>/step")
def step(job_id):
    """Do the next chunk of a running import and answer with the progress (or the report when done)."""
    job = _job(job_id)
    job.step(_directory(), chunk_rows=int(current_app.config.get("IMPORT_CHUNK_ROWS") or CHUNK_ROWS))
    return _answer(job)


@bp.post("/imports/<int:job_id>/cancel")
def cancel(job_id):
    """Stop an import (before it starts, or while it runs) and remove its file."""
    job = _job(job_id)
    job.cancel(_directory())
    return _answer(job)


@bp.get("/imports/<int:job_id>/report.csv")
def report(job_id):
    """The report, one line per row (created, updated, skipped or invalid, with the reason), as CSV."""
    job = _job(job_id)
    name = os.path.splitext(job.filename)[0] or "import"
    safe = "".join(ch for ch in name if ch.isalnum() or ch in "-_")[:60] or "import"

    def lines():  # streamed after the request ended: the generator holds its own connection
        with connection():
            yield from job.report_lines()
    response = Response(lines(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="import-{job.id}-{safe}-report.csv"'
    return response
