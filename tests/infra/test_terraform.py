"""Terraform held against the code: functions, settings, routes, ledger and packages cannot drift apart."""
from __future__ import annotations

import json
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import hcl2
import pytest

from ops import gateway_spec, package
from shared.adapters import firestore as ledger
from shared.adapters.google import SCOPES
from shared.web.routes import ROUTES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TF_DIR = ROOT / "infra" / "terraform"
INTERNAL = {"check_status", "sync_recordings", "deliver_webhooks"}
# Settings without a default that the cloud path needs (Cloud SQL over IAM, keyless delegation, the project).
REQUIRED_IN_CLOUD = {"CLOUD_SQL_INSTANCE", "DB_IAM_USER", "GOOGLE_DELEGATION_SA", "GOOGLE_CLOUD_PROJECT"}
# Set in the cloud although they have defaults, because the deployment decides them.
DEPLOYMENT_DECIDES = {"DB_NAME", "CLOUD_SQL_IP_TYPE", "DB_POOL_SIZE", "WORKSPACE_DOMAIN", "DEFAULT_CALENDAR_OWNER",
                      "DEFAULT_TIME_ZONE", "DEFAULT_ROOM_ACCESS", "GRACE_PERIOD_MINUTES", "LOG_LEVEL", "TASKS_QUEUE",
                      "CHECK_STATUS_URL", "SYNC_RECORDINGS_URL", "TASKS_INVOKER_SA", "FIRESTORE_DATABASE",
                      "WEBHOOK_TASKS_QUEUE", "DELIVER_WEBHOOKS_URL", "GATEWAY_SA", "OIDC_AUDIENCES"}
# Local-only switches: set in the cloud they would bypass Cloud SQL, Google or the real Cloud Tasks.
LOCAL_ONLY = {"DATABASE_URL", "GOOGLE_API_ROOT", "TASKS_EMULATOR_HOST", "WEBHOOK_ALLOW_LOOPBACK_HTTP"}
# Secrets: mounted from Secret Manager (secret_environment_variables), never plain environment.
SECRET_SETTINGS = {"WEBHOOK_SECRETS_KEY", "PAGE_TOKEN_KEY"}
_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True,
                                     preserve_heredocs=False)


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=_OPTIONS)


@pytest.fixture(scope="module")
def tf() -> dict[str, list]:
    """Every top-level block of every .tf file, merged by block type."""
    merged: dict[str, list] = {}
    for path in sorted(TF_DIR.glob("*.tf")):
        for kind, blocks in _load(path).items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def _locals(tf) -> dict:
    out: dict = {}
    for block in tf["locals"]:
        out.update(block)
    return out


def _resources(tf, kind: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for block in tf.get("resource", []):
        for name, body in block.get(kind, {}).items():
            out[name] = body
    return out


def _variables(tf) -> dict[str, dict]:
    return {name: body for block in tf["variable"] for name, body in block.items()}


def _env_name(name: str, field) -> str:
    return (field.alias or name).upper()


def _one(value):
    """A nested block as python-hcl2 gives it: a list holding one dict."""
    assert isinstance(value, list) and len(value) == 1, value
    return value[0]


# --- functions ---------------------------------------------------------------------------------------------

def test_every_function_directory_has_its_terraform_function(tf):
    table = _locals(tf)["functions"]
    directories = set(package.function_names())
    assert directories, "no functions found"
    assert directories <= set(table), f"functions without terraform: {sorted(directories - set(table))}"
    fn = _resources(tf, "google_cloudfunctions2_function")["fn"]
    assert fn["for_each"] == "${local.functions}"
    assert fn["name"] == "${each.key}"
    build = _one(fn["build_config"])
    assert build["entry_point"] == "${each.key}", "the entry point must be the function's name"
    assert build["runtime"] == "python312"


def test_function_table_agrees_with_the_route_table(tf):
    table = _locals(tf)["functions"]
    routed = {r.function: r.public for r in ROUTES}
    for name, public in routed.items():
        assert name in table, f"{name} serves routes but has no terraform function"
        assert table[name]["public"] is public, f"{name}: public={table[name]['public']} in terraform"
    assert {n for n, f in table.items() if not f["public"]} == INTERNAL
    for name, fn in table.items():
        assert fn["timeout"] >= (gateway_spec.BACKEND_DEADLINE_SECONDS if fn["public"] else 60), name


def test_every_function_gets_the_one_environment(tf):
    service = _one(_resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"])
    assert service["environment_variables"] == "${local.function_env}"
    assert service["service_account_email"] == "${google_service_account.runtime.email}"


def test_environment_provides_every_required_setting(tf):
    fields = Settings.model_fields
    names = {_env_name(n, f) for n, f in fields.items()}
    for env in REQUIRED_IN_CLOUD | DEPLOYMENT_DECIDES | LOCAL_ONLY:
        assert env in names, f"{env} is no longer a setting of shared/settings.py"
    for name, field in fields.items():
        if field.is_required():
            assert _env_name(name, field) in REQUIRED_IN_CLOUD, f"new required setting {name}: add it to terraform"
    provided = set(_locals(tf)["function_env"])
    assert REQUIRED_IN_CLOUD | DEPLOYMENT_DECIDES <= provided, sorted((REQUIRED_IN_CLOUD | DEPLOYMENT_DECIDES) - provided)
    assert not provided & (LOCAL_ONLY | SECRET_SETTINGS)
    assert provided <= names, f"not settings of the code: {sorted(provided - names)}"


def test_db_iam_user_is_the_runtime_email_without_suffix(tf):
    user = _resources(tf, "google_sql_user")["runtime"]
    assert user["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"
    assert user["name"] == '${trimsuffix(google_service_account.runtime.email, ".gserviceaccount.com")}'
    assert _locals(tf)["function_env"]["DB_IAM_USER"] == "${google_sql_user.runtime.name}"


def test_internal_urls_are_computed_without_referring_to_the_functions(tf):
    urls = _locals(tf)["internal_urls"]
    assert "google_cloudfunctions2_function" not in urls
    assert "cloudfunctions.net" not in urls
    assert "for name in keys(local.internal_functions)" in urls
    env = _locals(tf)["function_env"]
    assert env["CHECK_STATUS_URL"] == '${local.internal_urls["check_status"]}'
    assert env["SYNC_RECORDINGS_URL"] == '${local.internal_urls["sync_recordings"]}'
    assert env["DELIVER_WEBHOOKS_URL"] == '${local.internal_urls["deliver_webhooks"]}'
    assert "google_cloudfunctions2_function" not in json.dumps(env)
    assert "cloudfunctions.net" not in json.dumps(tf), "nothing targets a cloudfunctions.net URL"


def test_connection_budget_fits_max_connections(tf):
    variables = _variables(tf)
    max_instances = variables["max_instances"]["default"]
    assert set(max_instances) == set(_locals(tf)["functions"])
    pool = variables["db_pool_size"]["default"]
    budget = sum(max_instances.values()) * pool
    assert budget <= variables["db_max_connections"]["default"] - variables["db_reserved_connections"]["default"]
    assert pool == Settings.model_fields["db_pool_size"].default, "DB_POOL_SIZE default differs from the settings'"
    service = _one(_resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"])
    assert service["max_instance_request_concurrency"] == "${var.db_pool_size}"
    internal_capacity = sum(max_instances[n] for n in INTERNAL) * pool
    assert variables["tasks_max_concurrent_dispatches"]["default"] <= internal_capacity


# --- variables ---------------------------------------------------------------------------------------------

def test_every_variable_has_a_type_and_a_description(tf):
    for name, body in _variables(tf).items():
        assert body.get("type"), f"variable {name} has no type"
        assert str(body.get("description", "")).strip(), f"variable {name} has no description"


def test_example_tfvars_sets_every_required_variable_and_nothing_unknown(tf):
    variables = _variables(tf)
    example = _load(TF_DIR / "terraform.tfvars.example")
    assert set(example) <= set(variables), sorted(set(example) - set(variables))
    required = {name for name, body in variables.items() if "default" not in body}
    assert required <= set(example), sorted(required - set(example))


def test_providers_are_pinned(tf):
    providers = _one(tf["terraform"])["required_providers"]
    merged = {k: v for block in providers for k, v in block.items()}
    assert set(merged) == {"google", "google-beta", "time"}
    for name in merged:
        assert merged[name]["source"] == f"hashicorp/{name}"
        assert merged[name]["version"].startswith("~>")


# --- API Gateway -------------------------------------------------------------------------------------------

def test_committed_gateway_template_is_generated_from_the_route_table():
    committed = gateway_spec.TEMPLATE_PATH.read_text(encoding="utf-8")
    assert committed == gateway_spec.template_text(), "run `make gateway-spec` and commit infra/terraform/generated/"


def test_gateway_spec_routes_exactly_the_public_routes():
    urls = {name: f"https://{name}.example.run.app" for name in gateway_spec.public_functions()}
    rendered = gateway_spec.render_template(gateway_spec.TEMPLATE_PATH.read_text(encoding="utf-8"), urls)
    spec = json.loads(rendered)
    assert spec == gateway_spec.build_spec(urls)
    assert spec["swagger"] == "2.0"
    seen = set()
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            backend = op["x-google-backend"]
            assert backend["path_translation"] == "APPEND_PATH_TO_ADDRESS"
            if path == gateway_spec.FALLBACK_PATH:
                assert backend["address"] == urls["get_meeting"]
                continue
            seen.add((method.upper(), path, op["operationId"], backend["address"]))
    expected = {(r.method, r.path, r.operation_id, urls[r.function]) for r in ROUTES if r.public}
    assert seen == expected
    assert not any(r.path in spec["paths"] for r in ROUTES if not r.public)
    ids = [op["operationId"] for methods in spec["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))


def test_terraform_renders_the_committed_template_with_every_public_function(tf):
    spec_expr = _locals(tf)["gateway_spec"]
    assert "generated/gateway-openapi.json.tftpl" in spec_expr
    assert "for name in keys(local.public_functions)" in spec_expr
    table = _locals(tf)["functions"]
    assert set(gateway_spec.public_functions()) <= {n for n, f in table.items() if f["public"]}
    config = _resources(tf, "google_api_gateway_api_config")["api"]
    backend = _one(_one(config["gateway_config"])["backend_config"])
    assert backend["google_service_account"] == "${google_service_account.gateway.email}"


# --- who may invoke what -----------------------------------------------------------------------------------

def test_nothing_is_open_to_all_users(tf):
    text = json.dumps(tf)
    assert "allUsers" not in text and "allAuthenticatedUsers" not in text


def test_internal_functions_only_answer_the_invoker(tf):
    bindings = _resources(tf, "google_cloud_run_v2_service_iam_member")
    internal, public = bindings["internal_invoker"], bindings["public_invoker"]
    assert internal["for_each"] == "${local.internal_functions}"
    assert internal["member"] == "serviceAccount:${google_service_account.invoker.email}"
    assert public["for_each"] == "${local.public_functions}"
    assert public["member"] == "serviceAccount:${google_service_account.gateway.email}"
    assert set(bindings) == {"internal_invoker", "public_invoker"}
    assert _resources(tf, "google_cloudfunctions2_function_iam_member") == {}
    assert _resources(tf, "google_cloud_run_service_iam_member") == {}
    assert "if !fn.public" in _locals(tf)["internal_functions"]
    service = _one(_resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"])
    assert service["ingress_settings"] == '${each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"}'


def test_scheduler_sweeps_post_empty_body_with_invoker_oidc(tf):
    assert _locals(tf)["sweeps"] == {"check_status": "*/5 * * * *", "sync_recordings": "*/30 * * * *",
                                     "deliver_webhooks": "*/5 * * * *"}
    job = _resources(tf, "google_cloud_scheduler_job")["sweep"]
    target = _one(job["http_target"])
    assert target["http_method"] == "POST"
    assert target["body"] == '${base64encode("{}")}'
    oidc = _one(target["oidc_token"])
    assert oidc["service_account_email"] == "${google_service_account.invoker.email}"
    assert oidc["audience"] == target["uri"] == "${local.internal_urls[each.key]}"
    assert set(_locals(tf)["sweeps"]) == INTERNAL


def test_delegation_scopes_match_the_code(tf):
    assert _locals(tf)["workspace_scopes"] == list(SCOPES)
    grant = _resources(tf, "google_service_account_iam_member")["runtime_signs_for_delegation"]
    assert grant["role"] == "roles/iam.serviceAccountTokenCreator"
    assert grant["service_account_id"] == "${google_service_account.delegation.name}"
    assert _resources(tf, "google_service_account_key") == {}, "delegation is keyless"


# --- data stores -------------------------------------------------------------------------------------------

def test_cloud_sql_is_postgres_16_with_iam_auth_backups_and_protection(tf):
    sql = _resources(tf, "google_sql_database_instance")["main"]
    assert sql["database_version"] == "POSTGRES_16"
    assert sql["deletion_protection"] == "${var.deletion_protection}"
    settings = _one(sql["settings"])
    backup = _one(settings["backup_configuration"])
    assert backup["enabled"] is True and backup["point_in_time_recovery_enabled"] is True
    flags = {f["name"]: f["value"] for f in settings["database_flags"]}
    assert flags["cloudsql.iam_authentication"] == "on"
    assert flags["max_connections"] == "${tostring(var.db_max_connections)}"
    assert _variables(tf)["deletion_protection"]["default"] is True


def test_firestore_ttl_covers_the_ledger_collections(tf):
    assert _locals(tf)["ledger_ttl"] == {
        name: "expires_at" for name in (ledger.IDEMPOTENCY, ledger.DELIVERIES, ledger.JOB_RUNS, ledger.LEASES)}
    field = _resources(tf, "google_firestore_field")["ttl"]
    assert field["ttl_config"] == [{}]
    database = _resources(tf, "google_firestore_database")["ledger"]
    assert database["type"] == "FIRESTORE_NATIVE"


def test_secrets_are_only_the_ones_the_code_reads(tf):
    assert set(_resources(tf, "google_secret_manager_secret")) == {"webhook_key", "page_token_key"}
    assert not _resources(tf, "google_secret_manager_secret_version"), "secret values never enter the state"
    assert _variables(tf)["secret_env"]["default"] == {}
    names = {_env_name(n, f) for n, f in Settings.model_fields.items()}
    assert SECRET_SETTINGS <= names
    assert _locals(tf)["webhook_secret_env"] == {
        "WEBHOOK_SECRETS_KEY": "${google_secret_manager_secret.webhook_key.secret_id}"}
    assert _locals(tf)["page_token_secret_env"] == {
        "PAGE_TOKEN_KEY": "${google_secret_manager_secret.page_token_key.secret_id}"}
    # Each key reaches only the functions that use it: the webhook key the two that encrypt or decrypt signing
    # secrets, the page-token key the one that issues and reads page tokens.
    table = _locals(tf)["functions"]
    assert {n for n, fn in table.items() if fn.get("webhook_key")} == {"manage_webhooks", "deliver_webhooks"}
    assert {n for n, fn in table.items() if fn.get("page_token_key")} == {"get_meeting"}
    secrets = _one(_one(_resources(tf, "google_cloudfunctions2_function")["fn"]["service_config"])
                   ["dynamic"])["secret_environment_variables"]
    assert secrets["for_each"] == "${local.function_secrets[each.key]}"
    merged = _locals(tf)["function_secrets"]
    assert all(part in merged for part in ("var.secret_env", "local.webhook_secret_env", "local.page_token_secret_env"))
    for name, secret in (("runtime_reads_webhook_key", "webhook_key"),
                         ("runtime_reads_page_token_key", "page_token_key")):
        grant = _resources(tf, "google_secret_manager_secret_iam_member")[name]
        assert grant["role"] == "roles/secretmanager.secretAccessor"
        assert grant["member"] == "${local.runtime_member}"
        assert grant["secret_id"] == f"${{google_secret_manager_secret.{secret}.secret_id}}"


def test_webhook_deliveries_have_their_own_queue(tf):
    queue = _resources(tf, "google_cloud_tasks_queue")["webhooks"]
    assert _locals(tf)["function_env"]["WEBHOOK_TASKS_QUEUE"] == "${google_cloud_tasks_queue.webhooks.id}"
    grant = _resources(tf, "google_cloud_tasks_queue_iam_member")["runtime_enqueues_webhooks"]
    assert grant["name"] == "${google_cloud_tasks_queue.webhooks.name}" and grant["role"] == "roles/cloudtasks.enqueuer"
    assert _one(queue["rate_limits"])["max_concurrent_dispatches"] == "${var.webhook_max_concurrent_dispatches}"
    variables = _variables(tf)
    capacity = variables["max_instances"]["default"]["deliver_webhooks"] * variables["db_pool_size"]["default"]
    assert variables["webhook_max_concurrent_dispatches"]["default"] <= capacity


# --- packages ----------------------------------------------------------------------------------------------

def test_packages_are_reproducible_and_complete(tmp_path):
    first = package.package(out_dir=tmp_path / "a")
    second = package.package(out_dir=tmp_path / "b")
    assert first == second
    assert set(first) == set(package.function_names())
    requirements = (ROOT / "requirements.txt").read_bytes()
    for name, item in first.items():
        a = (tmp_path / "a" / item["zip"]).read_bytes()
        assert a == (tmp_path / "b" / item["zip"]).read_bytes(), f"{name}: two builds differ"
        assert re.fullmatch(rf"{name}-[0-9a-f]{{12}}\.zip", item["zip"])
        assert item["sha256"].startswith(item["zip"].rsplit("-", 1)[1][:12])
        with zipfile.ZipFile(tmp_path / "a" / item["zip"]) as archive:
            names = archive.namelist()
            assert names == sorted(names)
            assert "main.py" in names and "shared/__init__.py" in names
            assert any(n.startswith("shared/adapters/postgres/migrations/") and n.endswith(".sql") for n in names)
            assert archive.read("requirements.txt") == requirements
            assert archive.read("main.py") == (ROOT / "functions" / name / "main.py").read_bytes()
            assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
            for info in archive.infolist():
                assert info.date_time == (1980, 1, 1, 0, 0, 0)
                assert info.external_attr >> 16 == 0o100644
    manifest = json.loads((tmp_path / "a" / package.MANIFEST).read_text())
    assert manifest == {"functions": first}


def test_a_code_change_renames_the_package(tmp_path):
    functions = tmp_path / "functions"
    (functions / "demo").mkdir(parents=True)
    (functions / "demo" / "main.py").write_text("x = 1\n")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "__init__.py").write_text("")
    (shared / "__pycache__").mkdir()
    (shared / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("flask\n")
    sources = {"functions_dir": functions, "shared_dir": shared, "requirements": requirements}
    before = package.package(out_dir=tmp_path / "out", **sources)["demo"]["zip"]
    (functions / "demo" / "main.py").write_text("x = 2\n")
    after = package.package(out_dir=tmp_path / "out", **sources)["demo"]["zip"]
    assert before != after
    assert sorted(p.name for p in (tmp_path / "out").glob("demo-*.zip")) == [after], "stale zips are removed"


def test_terraform_uploads_the_manifest_packages(tf):
    assert "manifest.json" in _locals(tf)["packages"]
    obj = _resources(tf, "google_storage_bucket_object")["source"]
    assert obj["for_each"] == "${local.functions}"
    assert "local.packages[each.key].zip" in obj["name"]
    source = _one(_one(_one(_resources(tf, "google_cloudfunctions2_function")["fn"]["build_config"])["source"])
                  ["storage_source"])
    assert source["object"] == "${google_storage_bucket_object.source[each.key].name}"


# --- internal targets: run.app URLs ------------------------------------------------------------------------

PROJECT_NUMBER = "123456789012"  # project numbers have up to 12 digits
REGION = "us-central1"


def _internal_url(tf, name: str) -> str:
    """local.internal_urls[name] evaluated for a sample project number and region, from the expression itself."""
    expression = _locals(tf)["internal_urls"]
    template = re.search(r'name => "([^"]+)"', expression).group(1)
    service = _run_service(tf, name)
    return (template.replace("${local.run_services[name]}", service)
            .replace("${data.google_project.this.number}", PROJECT_NUMBER)
            .replace("${var.region}", REGION))


def _run_service(tf, name: str) -> str:
    expression = _locals(tf)["run_services"]
    assert expression == '${{for name in keys(local.functions) : name => replace(lower(name), "_", "-")}}'
    return name.lower().replace("_", "-")


def test_internal_targets_are_the_deterministic_run_app_urls(tf):
    """Cloud Run admits Cloud Tasks and Cloud Scheduler as internal traffic only at the run.app URL
    (https://cloud.google.com/run/docs/securing/ingress), and its deterministic form is
    https://SERVICE-PROJECT_NUMBER.REGION.run.app (https://cloud.google.com/run/docs/triggering/https-request)."""
    assert _internal_url(tf, "check_status") == f"https://check-status-{PROJECT_NUMBER}.{REGION}.run.app"
    assert _internal_url(tf, "sync_recordings") == f"https://sync-recordings-{PROJECT_NUMBER}.{REGION}.run.app"
    assert _internal_url(tf, "deliver_webhooks") == f"https://deliver-webhooks-{PROJECT_NUMBER}.{REGION}.run.app"
    for name in INTERNAL:
        # The deterministic URL exists only while SERVICE-PROJECT_NUMBER fits one DNS label.
        assert len(f"{_run_service(tf, name)}-{PROJECT_NUMBER}") <= 63
    project = _one([b for b in tf["data"] if "google_project" in b])["google_project"]["this"]
    assert project["project_id"] == "${var.project_id}", "the number comes from the project, not from a resource"
    assert "depends_on" not in project


def test_tasks_and_sweeps_use_the_run_app_url_as_target_and_audience(tf):
    env = _locals(tf)["function_env"]
    job = _resources(tf, "google_cloud_scheduler_job")["sweep"]
    target = _one(job["http_target"])
    assert target["uri"] == _one(target["oidc_token"])["audience"] == "${local.internal_urls[each.key]}"
    # Tasks: shared/tasks.py posts to the setting's URL with that same URL as audience.
    from shared.adapters.cloud_tasks import CloudTasksQueue, Task

    class Client:
        def create_task(self, parent, task, retry, timeout):
            self.task = task

    url = _internal_url(tf, "check_status")
    settings = Settings(database_url="postgresql://x@localhost/x", google_api_root="http://localhost/",
                        tasks_queue="projects/p/locations/us-central1/queues/q", check_status_url=url,
                        tasks_invoker_sa="meet-invoker@p.iam.gserviceaccount.com")
    queue = CloudTasksQueue(settings)
    queue._client = client = Client()
    queue.enqueue(Task("check_status", "m1", 1, datetime.now(timezone.utc), "check"))
    assert client.task.http_request.url == client.task.http_request.oidc_token.audience == url
    assert env["TASKS_INVOKER_SA"] == "${google_service_account.invoker.email}"


def test_auth_accepts_the_run_app_urls_as_audiences(tf, monkeypatch):
    """shared/services/auth.py verifies the token's audience against CHECK_STATUS_URL and SYNC_RECORDINGS_URL."""
    from google.oauth2 import id_token

    from shared.services import auth

    seen = {}

    def verify_token(token, request, audience=None, certs_url=None):
        seen["audience"] = audience
        return {"iss": "https://accounts.google.com", "email": "x", "email_verified": True}

    monkeypatch.setattr(id_token, "verify_token", verify_token)
    urls = {name: _internal_url(tf, name) for name in INTERNAL}
    settings = Settings(database_url="postgresql://x@localhost/x", google_api_root="http://localhost/",
                        check_status_url=urls["check_status"], sync_recordings_url=urls["sync_recordings"],
                        deliver_webhooks_url=urls["deliver_webhooks"])
    auth.verify_oidc_token("token", settings)
    assert sorted(seen["audience"]) == sorted(urls.values())


def _public_url(tf, name: str) -> str:
    template = re.search(r'name => "([^"]+)"', _locals(tf)["public_urls"]).group(1)
    return (template.replace("${local.run_services[name]}", _run_service(tf, name))
            .replace("${data.google_project.this.number}", PROJECT_NUMBER).replace("${var.region}", REGION))


def test_the_gateway_signs_for_the_audiences_the_public_functions_accept(tf):
    """API Gateway calls each public function at its run.app URL with an ID token for that URL (jwt_audience); the
    functions take X-Forwarded-Authorization only beside such a token of GATEWAY_SA, for one of OIDC_AUDIENCES."""
    public = {name for name, fn in _locals(tf)["functions"].items() if fn["public"]}
    assert "for name in keys(local.public_functions)" in _locals(tf)["public_urls"]
    assert {n: _public_url(tf, n) for n in public} == {
        n: f"https://{n.replace('_', '-')}-{PROJECT_NUMBER}.{REGION}.run.app" for n in public}
    env = _locals(tf)["function_env"]
    assert env["GATEWAY_SA"] == "${google_service_account.gateway.email}"
    assert env["OIDC_AUDIENCES"] == ("${jsonencode([for name in sort(keys(local.public_urls)) : "
                                     "local.public_urls[name]])}")
    assert "for name in keys(local.public_functions) : name => local.public_urls[name]" in _locals(tf)["gateway_spec"]
    urls = {name: f"https://{name}.example.run.app" for name in gateway_spec.public_functions()}
    spec = json.loads(gateway_spec.render_template(gateway_spec.TEMPLATE_PATH.read_text(encoding="utf-8"), urls))
    for methods in spec["paths"].values():
        for op in methods.values():
            assert op["x-google-backend"]["jwt_audience"] == op["x-google-backend"]["address"]


def test_checks_compare_the_computed_names_and_urls_with_googles(tf):
    checks = {name: body for block in tf["check"] for name, body in block.items()}
    assert "local.run_services[name]" in json.dumps(checks["run_services"])
    assert "fn.service_config[0].service" in json.dumps(checks["run_services"])
    for name in INTERNAL:
        check = checks[f"{name}_url"]
        data = _one(check["data"])["google_cloud_run_v2_service"][name]
        assert data["name"] == f'${{google_cloudfunctions2_function.fn["{name}"].service_config[0].service}}'
        condition = _one(check["assert"])["condition"]
        urls = f"data.google_cloud_run_v2_service.{name}.urls"
        assert condition == f'${{contains({urls}, local.internal_urls["{name}"])}}'


# --- a first apply on a fresh project ----------------------------------------------------------------------

def _grants_of(tf, member_local: str) -> dict[str, dict]:
    """Every IAM member resource granting something to local.<member_local>, by "type.name"."""
    out = {}
    for block in tf.get("resource", []):
        for kind, items in block.items():
            if kind.endswith("_iam_member"):
                for name, body in items.items():
                    if body.get("member") == f"${{local.{member_local}}}":
                        out[f"{kind}.{name}"] = body
    return out


def test_functions_wait_for_the_build_and_runtime_grants(tf):
    """IAM grants propagate in typically 2 and sometimes 7 or more minutes
    (https://cloud.google.com/iam/docs/access-change-propagation): every function waits on a time_sleep whose
    triggers name every grant of the build and runtime accounts, so a new grant makes it wait again."""
    sleep = _resources(tf, "time_sleep")["iam_propagation"]
    assert sleep["create_duration"] == "${var.iam_propagation_seconds}s"
    assert _variables(tf)["iam_propagation_seconds"]["default"] >= 120
    triggers = sleep["triggers"]
    for account in ("build", "runtime"):
        grants = _grants_of(tf, f"{account}_member")
        assert grants, account
        for address, body in grants.items():
            reference = f"for grant in {address}" if "for_each" in body else f"{address}.id"
            assert reference in triggers[account], f"{address} is not waited for"
    fn = _resources(tf, "google_cloudfunctions2_function")["fn"]
    assert fn["depends_on"] == ["${time_sleep.iam_propagation}"]


def test_build_account_has_exactly_googles_documented_roles(tf):
    """A user-specified build account needs Logs Writer, Artifact Registry Writer and Storage Object Viewer
    (https://cloud.google.com/functions/docs/securing/build-custom-sa); each is granted on the narrowest
    resource: the writer on the functions' own repository, the viewer on the sources and the staging buckets."""
    grants = {address: body["role"] for address, body in _grants_of(tf, "build_member").items()}
    project_roles = _resources(tf, "google_project_iam_member")["build"]["for_each"]
    assert project_roles == '${toset(["roles/logging.logWriter"])}'
    assert grants == {
        "google_project_iam_member.build": "${each.value}",
        "google_artifact_registry_repository_iam_member.build_writes_images": "roles/artifactregistry.writer",
        "google_storage_bucket_iam_member.build_reads_sources": "roles/storage.objectViewer",
        "google_project_iam_member.build_reads_staged_sources": "roles/storage.objectViewer",
    }
    writer = _resources(tf, "google_artifact_registry_repository_iam_member")["build_writes_images"]
    assert writer["repository"] == "${google_artifact_registry_repository.functions.name}"
    build = _one(_resources(tf, "google_cloudfunctions2_function")["fn"]["build_config"])
    assert build["docker_repository"] == "${google_artifact_registry_repository.functions.id}"
    assert build["service_account"] == "${google_service_account.build.id}"
    assert _locals(tf)["gcf_staging_bucket_prefixes"] == ["gcf-v2-sources-", "gcf-v2-uploads-", "run-sources-"]
    staged = _one(_resources(tf, "google_project_iam_member")["build_reads_staged_sources"]["condition"])
    assert "local.gcf_staging_bucket_prefixes" in staged["expression"]
    assert "artifactregistry" not in json.dumps(_resources(tf, "google_project_iam_member")), "no project-wide AR role"


def test_gateway_service_is_enabled_after_its_config_exists(tf):
    enable = _resources(tf, "google_project_service")["gateway_api"]
    assert enable["service"] == "${google_api_gateway_api.api.managed_service}"
    assert "${google_api_gateway_api_config.api}" in enable["depends_on"]
    gateway = _resources(tf, "google_api_gateway_gateway")["gateway"]
    assert "${google_project_service.gateway_api}" in gateway["depends_on"]


def test_secret_grants_wait_for_secret_manager(tf):
    grant = _resources(tf, "google_secret_manager_secret_iam_member")["runtime"]
    assert "${google_project_service.enabled}" in grant["depends_on"]
    assert '"secretmanager.googleapis.com"' in _locals(tf)["services"]
    for name in ("webhook_key", "page_token_key"):
        secret = _resources(tf, "google_secret_manager_secret")[name]
        assert "${google_project_service.enabled}" in secret["depends_on"]


def test_max_instances_is_a_lookup_so_the_precondition_speaks(tf):
    fn = _resources(tf, "google_cloudfunctions2_function")["fn"]
    service = _one(fn["service_config"])
    assert service["max_instance_count"] == "${lookup(var.max_instances, each.key, 0)}"
    assert "var.max_instances[" not in json.dumps(tf)
    conditions = [c["condition"] for c in _one(fn["lifecycle"])["precondition"]]
    assert "${contains(keys(var.max_instances), each.key)}" in conditions


def test_warm_instances_are_the_operators_choice_within_max_instances(tf):
    """No instance is kept warm unless the operator asks (min_instances bills idle instances); one asked for is a
    lookup like max_instances, checked against it and against the function names before anything is applied."""
    variables = _variables(tf)
    assert variables["min_instances"]["default"] == {}
    fn = _resources(tf, "google_cloudfunctions2_function")["fn"]
    assert _one(fn["service_config"])["min_instance_count"] == "${lookup(var.min_instances, each.key, 0)}"
    conditions = [c["condition"] for c in _one(fn["lifecycle"])["precondition"]]
    assert "${lookup(var.min_instances, each.key, 0) <= lookup(var.max_instances, each.key, 0)}" in conditions
    assert any("keys(var.min_instances)" in c and "keys(local.functions)" in c for c in conditions)
    example = (TF_DIR / "terraform.tfvars.example").read_text()
    shown = re.search(r"# min_instances = \{\n((?:#   \w+ += \d+\n)+)# \}", example)
    assert shown, "the example tfvars shows min_instances"
    defaults = variables["max_instances"]["default"]
    for name, count in re.findall(r"#   (\w+) += (\d+)", shown.group(1)):
        assert name in defaults and int(count) <= defaults[name], name


# --- operators, the migrator and the database users --------------------------------------------------------

def test_no_operator_can_act_as_the_runtime_account(tf):
    """Token Creator (or any role) on the runtime account would let its holder sign delegation assertions as
    any Workspace user; the runtime account's only principal-level grants are its own."""
    for name, body in _resources(tf, "google_service_account_iam_member").items():
        assert body["service_account_id"] != "${google_service_account.runtime.name}", name
    mentions = [(kind, name) for block in tf["resource"] for kind, items in block.items()
                for name, body in items.items() if "var.operator_members" in json.dumps(body)]
    assert mentions == [("google_service_account_iam_member", "operators_impersonate_migrator")]
    grant = _resources(tf, "google_service_account_iam_member")["operators_impersonate_migrator"]
    assert grant["service_account_id"] == "${google_service_account.migrator.name}"
    assert grant["role"] == "roles/iam.serviceAccountTokenCreator"


def test_migrator_has_only_the_cloud_sql_login_roles(tf):
    account = _resources(tf, "google_service_account")["migrator"]
    assert account["account_id"] == "${var.name}-migrator"
    assert _locals(tf)["sql_login_roles"] == '${toset(["roles/cloudsql.client", "roles/cloudsql.instanceUser"])}'
    grants = _grants_of(tf, "migrator_member")
    assert set(grants) == {"google_project_iam_member.migrator_sql"}
    sql = grants["google_project_iam_member.migrator_sql"]
    assert sql["for_each"] == "${local.sql_login_roles}"
    condition = _one(sql["condition"])
    assert condition["expression"] == "${local.sql_instance_condition.expression}"
    assert 'resource.name == "projects/${var.project_id}/instances/${var.sql_instance_name}"' in \
        _locals(tf)["sql_instance_condition"]["expression"]
    # Nothing else names the migrator: no other binding, on no other resource.
    referencing = [name for block in tf["resource"] for kind, items in block.items() for name, body in items.items()
                   if kind.endswith("_iam_member") and "migrator" in json.dumps(body)]
    assert sorted(referencing) == ["migrator_sql", "operators_impersonate_migrator"]


def test_database_users_are_iam_logins_abandoned_on_destroy(tf):
    users = _resources(tf, "google_sql_user")
    assert set(users) == {"runtime", "migrator"}
    for name, user in users.items():
        assert user["type"] == "CLOUD_IAM_SERVICE_ACCOUNT"
        assert user["deletion_policy"] == "ABANDON"
        assert user["name"] == f'${{trimsuffix(google_service_account.{name}.email, ".gserviceaccount.com")}}'
        assert "password" not in user
    outputs = {name: body for block in tf["output"] for name, body in block.items()}
    assert outputs["migrator_db_user"]["value"] == "${google_sql_user.migrator.name}"
    assert outputs["migrator_service_account"]["value"] == "${google_service_account.migrator.email}"


def test_migration_finds_the_runtime_user_by_the_terraform_name():
    """0003 grants the runtime IAM user (Cloud SQL names it NAME-runtime@PROJECT.iam) DML on the migrator's tables."""
    sql = (ROOT / "shared" / "adapters" / "postgres" / "migrations" / "0003_pgaudit.sql").read_text(encoding="utf-8")
    assert "r.rolname LIKE '%-runtime@%.iam'" in sql
    assert "pg_has_role(r.oid, 'cloudsqliamserviceaccount', 'MEMBER')" in sql
    assert "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES" in sql


def test_runtime_account_id_matches_the_migration_pattern(tf):
    assert _resources(tf, "google_service_account")["runtime"]["account_id"] == "${var.name}-runtime"


# --- pgAudit and audit logs --------------------------------------------------------------------------------

def test_pgaudit_flag_is_on_and_a_migration_creates_the_extension(tf):
    settings = _one(_resources(tf, "google_sql_database_instance")["main"]["settings"])
    flags = {f["name"]: f["value"] for f in settings["database_flags"]}
    assert flags["cloudsql.enable_pgaudit"] == "on"
    assert flags["pgaudit.log"]
    sql = (ROOT / "shared" / "adapters" / "postgres" / "migrations" / "0003_pgaudit.sql").read_text(encoding="utf-8")
    assert "CREATE EXTENSION IF NOT EXISTS pgaudit" in sql
    assert "pg_available_extensions WHERE name = 'pgaudit'" in sql


def test_data_access_audit_logs_for_storage_writes_and_cloud_sql(tf):
    """Object writes are DATA_WRITE Data Access logs, off by default; Cloud SQL sends pgAudit's entries as Data
    Access logs (https://cloud.google.com/sql/docs/postgres/pg-audit), so both are switched on."""
    configs = _resources(tf, "google_project_iam_audit_config")
    assert {name: (c["service"], [t["log_type"] for t in c["audit_log_config"]]) for name, c in configs.items()} == {
        "storage_writes": ("storage.googleapis.com", ["DATA_WRITE"]),
        "cloudsql_data_access": ("cloudsql.googleapis.com", ["DATA_READ", "DATA_WRITE"]),
    }
    for config in configs.values():
        assert "exempted_members" not in json.dumps(config)


CHECKOV = TF_DIR / ".checkov.yaml"


def test_every_checkov_skip_is_justified_and_the_bucket_one_is_true():
    lines = CHECKOV.read_text(encoding="utf-8").splitlines()
    start = lines.index("skip-check:")
    reasons: dict[str, str] = {}
    comment: list[str] = []
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            comment.append(stripped.lstrip("# "))
        elif stripped.startswith("- "):
            assert comment, f"{stripped} has no justification"
            reasons[stripped[2:]] = " ".join(comment)
            comment = []
    assert set(reasons) == {"CKV_GCP_60", "CKV_GCP_79", "CKV2_GCP_13", "CKV_GCP_62", "CKV_GCP_84"}
    bucket = reasons["CKV_GCP_62"]
    assert "build account alone" not in bucket
    assert "DATA_WRITE" in bucket and "audit.tf" in bucket
    assert "Cloud Functions service agent" in bucket and "Reads are not logged" in bucket
