"""Re-checking the policy from the console (admin): the file is reloaded, the store's
violations replaced, and the audit log keeps who applied which version of the file."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from otconduit.store import Store
from tests.console.conftest import POLICY, login, make_env

# A conduit that admits the fixture's Modbus clients (127.0.5.x) once they are in a zone.
EXTRA_ZONE = """
  - name: test-bench
    level: 2
    members: [127.0.5.0/24]
"""


def test_admin_rechecks_an_edited_policy(analysed_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "conduit.db"
    shutil.copy(analysed_db, db)
    policy = tmp_path / "policy.yaml"
    shutil.copy(POLICY, policy)
    env = make_env(db, tmp_path, policy=policy)
    admin, analyst = TestClient(env.app), TestClient(env.app)
    login(admin, "admin", "admin-pass-1")
    login(analyst, "analyst", "analyst-pass-1")
    assert analyst.post("/api/policy/check").status_code == 403
    token = admin.headers.pop("X-CSRF-Token")
    assert admin.post("/api/policy/check").status_code == 403  # CSRF
    admin.headers["X-CSRF-Token"] = token

    first = admin.post("/api/policy/check").json()
    assert first["changed"] is False and first["policy"] == "conduit-lab"
    with Store(db, readonly=True) as st:
        stored = st.conn.execute("SELECT count(*) FROM violations").fetchone()[0]
    assert first["violations"] == stored
    before_zone = admin.get("/api/assets/127.0.5.10").json()["asset"]["zone"]
    assert before_zone is None

    text = policy.read_text()
    policy.write_text(text.replace("\nzones:\n", "\nzones:\n" + EXTRA_ZONE, 1))
    second = admin.post("/api/policy/check").json()
    assert second["changed"] is True and second["previous_sha256"] == first["sha256"]
    assert second["by_rule"].get("asset-in-no-zone", 0) < first["by_rule"]["asset-in-no-zone"]
    # Placement follows the new file at once.
    assert admin.get("/api/assets/127.0.5.10").json()["asset"]["zone"] == "test-bench"

    policy.write_text("version: 1\nzones: [\n")
    bad = admin.post("/api/policy/check")
    assert bad.status_code == 422 and "policy.yaml" in bad.json()["error"]["message"]

    _, log = env.ctx.auth.audit_log()
    checks = [e for e in log if e["action"] == "policy.check"][::-1]
    assert [(e["user"], e["outcome"]) for e in checks] == [
        ("admin", "ok"),
        ("admin", "ok"),
        ("admin", "refused"),
    ]
    assert checks[1]["detail"]["changed"] is True
    assert checks[1]["detail"]["sha256"] == second["sha256"]
    env.ctx.close()


def test_without_a_policy_there_is_nothing_to_check(analysed_db: Path, tmp_path: Path) -> None:
    env = make_env(analysed_db, tmp_path, policy=None)
    c = TestClient(env.app)
    login(c, "admin", "admin-pass-1")
    r = c.post("/api/policy/check")
    assert r.status_code == 409 and "--policy" in r.json()["error"]["message"]
    env.ctx.close()
