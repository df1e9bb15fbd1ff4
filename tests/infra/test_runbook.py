"""docs/operations.md held against the code and the Terraform it describes."""
from __future__ import annotations

import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"
RUNBOOK = ROOT / "docs" / "operations.md"


def test_docs_name_the_iam_method_google_auth_signs_with():
    """google-auth's iam.Signer (shared/adapters/google.py's keyless delegation) calls IAM Credentials signBlob."""
    from google.auth import iam

    assert iam._IAM_SIGN_ENDPOINT.endswith(":signBlob")
    assert "_IAM_SIGN_ENDPOINT" in inspect.getsource(iam.Signer._make_signing_request)
    shared_google = (ROOT / "shared" / "adapters" / "google.py").read_text(encoding="utf-8")
    assert "iam.Signer(" in shared_google
    docs = RUNBOOK.read_text(encoding="utf-8")
    assert "signBlob" in docs and "signJwt" not in docs
    assert "signJwt" not in "".join(p.read_text(encoding="utf-8") for p in TF_DIR.glob("*.tf"))


def test_runbook_has_no_password_step_and_migrates_as_the_migrator():
    docs = RUNBOOK.read_text(encoding="utf-8")
    assert "set-password postgres" not in docs and "cloud-sql-proxy" not in docs
    assert "--impersonate-service-account=\"$(terraform output -raw migrator_service_account)\"" in docs
    assert "DB_IAM_USER=\"$(terraform output -raw migrator_db_user)\"" in docs
    assert "runtime_service_account)" not in docs


def test_every_output_the_runbook_reads_exists():
    import re

    import hcl2

    outputs = set()
    for path in TF_DIR.glob("*.tf"):
        with path.open(encoding="utf-8") as handle:
            for block in hcl2.load(handle).get("output", []):
                outputs.update(name.strip('"') for name in block)
    docs = RUNBOOK.read_text(encoding="utf-8")
    read = set(re.findall(r"terraform output -raw ([a-z_]+)", docs))
    assert read, "the runbook reads no output"
    assert read <= outputs, sorted(read - outputs)


def test_runbook_says_what_stays_manual_and_why():
    docs = RUNBOOK.read_text(encoding="utf-8")
    intro = docs.split("## What gets deployed")[0]
    assert "Three steps stay manual" in intro and "gcloud secrets versions add" in docs
    assert "domain-wide delegation" in intro and "super admin" in intro
    assert "cloudsqlsuperuser" in intro and "database_roles" in intro
    assert "gcloud sql users assign-roles" in docs and "--type=CLOUD_IAM_SERVICE_ACCOUNT" in docs
    assert "GRANT ALL ON SCHEMA" not in docs
