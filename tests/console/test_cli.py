"""`conduit user add` and `conduit console` argument handling (the commands live in
cli/console_cmd.py; tested through a Typer app of their own until cli/main.py
registers them)."""

from __future__ import annotations

from pathlib import Path

import typer
from argon2 import PasswordHasher
from typer.testing import CliRunner

from otconduit.cli.console_cmd import console, user_app
from otconduit.console.authdb import AuthDB, default_path

app = typer.Typer(add_completion=False)
app.command("console")(console)
app.add_typer(user_app, name="user")
run = CliRunner().invoke


def test_user_add_with_password_on_stdin(tmp_path: Path) -> None:
    db = tmp_path / "plant.db"
    r = run(app, ["user", "add", "alice", "--role", "analyst", "--password-stdin", "--db", str(db)],
            input="correct horse battery\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    path = default_path(db)
    assert path == tmp_path / "plant.console.db" and path.exists()
    auth = AuthDB(path)
    try:
        user = auth.authenticate("alice", "correct horse battery")
        assert user is not None and user.role == "analyst"
        assert auth.authenticate("alice", "wrong") is None
        (digest,) = auth.conn().execute("SELECT password_hash FROM users").fetchone()
        assert digest.startswith("$argon2id$") and "correct" not in digest
        p = PasswordHasher()  # the console's default parameters
        assert f"m={p.memory_cost},t={p.time_cost},p={p.parallelism}" in digest
        _, log = auth.audit_log()
        assert log[0]["action"] == "user.add" and log[0]["target"] == "user:alice"
    finally:
        auth.close()
    args = ["user", "add", "alice", "--role", "admin", "--password-stdin", "--db", str(db)]
    again = run(app, args, input="another password\n")
    assert again.exit_code == 2 and "exists" in again.output
    upd = run(app, ["user", "add", "alice", "--role", "admin", "--password-stdin", "--update",
                    "--db", str(db)], input="another password\n")  # fmt: skip
    assert upd.exit_code == 0
    listing = run(app, ["user", "list", "--db", str(db)])
    assert "alice" in listing.output and "admin" in listing.output


def test_user_add_prompts_twice(tmp_path: Path) -> None:
    auth_db = tmp_path / "users.db"
    r = run(app, ["user", "add", "bob", "--auth-db", str(auth_db)],
            input="s3cret-pass-phrase\ns3cret-pass-phrase\n")  # fmt: skip
    assert r.exit_code == 0, r.output
    auth = AuthDB(auth_db)
    try:
        u = auth.authenticate("bob", "s3cret-pass-phrase")
        assert u is not None and u.role == "viewer"
    finally:
        auth.close()


def test_user_add_refuses_bad_input(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    r = run(app, ["user", "add", "carol", "--role", "root", "--password-stdin", "--db", db],
            input="long enough pass\n")  # fmt: skip
    assert r.exit_code == 2 and "unknown role" in r.output
    r = run(app, ["user", "add", "carol", "--password-stdin", "--db", db], input="short\n")
    assert r.exit_code == 2 and "at least 12" in r.output
    r = run(app, ["user", "add", "two words", "--password-stdin", "--db", db],
            input="long enough pass\n")  # fmt: skip
    assert r.exit_code == 2 and "without spaces" in r.output


def test_console_checks_its_arguments_before_serving(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    r = run(app, ["console", "--cert", str(cert), "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 2 and "--cert and --key go together" in r.output
    r = run(app, ["console", "--policy", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "file not found" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: [\n")
    r = run(app, ["console", "--policy", str(bad), "--db", str(tmp_path / "a.db")])
    assert r.exit_code == 2 and "error" in r.output
    r = run(app, ["console", "--db", str(tmp_path / "typo.db")])
    assert r.exit_code == 2 and "does not exist" in r.output
    assert not (tmp_path / "typo.db").exists()
    notdb = tmp_path / "not.db"
    notdb.write_text("this is not sqlite" * 100)
    r = run(app, ["console", "--db", str(notdb)])
    assert r.exit_code == 2 and "not.db" in r.output
