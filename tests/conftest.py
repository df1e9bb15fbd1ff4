"""Shared fixtures: one real PostgreSQL per test session, fresh clients per test."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from shared.adapters.postgres import migrate

from shared.services import auth
from shared.domain.principal import Principal
from shared.adapters.postgres.db import Database, local_connector


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory) -> str:
    """A migrated, empty database: TEST_DATABASE_URL's server, or the embedded one under .local/."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url = base
    else:
        from dev.pg import embedded, state_dir

        server, url = embedded(state_dir() / "test-pgdata", database="postgres")
        name = f"test_{uuid.uuid4().hex[:10]}"
        server.psql(f'CREATE DATABASE "{name}";')
        url = url.replace("/postgres?", f"/{name}?")
    db = Database(local_connector(url), size=1)
    migrate.migrate(db)
    db.close()
    return url


@pytest.fixture(scope="session")
def db(pg_url) -> Database:
    database = Database(local_connector(pg_url), size=8)
    yield database
    database.close()


def new_principal(db: Database, role: str = "service") -> tuple[Principal, str]:
    """A fresh API client with one key: tenancy keeps each test's meetings to itself."""
    key = auth.mint_key(db, name=f"client-{uuid.uuid4().hex[:8]}", role=role)
    return auth.authenticate(db, f"Bearer {key}"), key


@pytest.fixture
def principal(db) -> Principal:
    return new_principal(db)[0]


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def checkout_first_on_path():
    """Functions and tools started as subprocesses import this checkout's code, whatever the virtualenv was
    installed from (an editable install of another checkout would otherwise win for console scripts)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([saved] if saved else [])])
    yield
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


LOCAL_DELEGATION_SA = "meet-delegation@local-dev.iam.gserviceaccount.com"
# The account Cloud Tasks signs task deliveries as: the session's tasks emulator holds its key, the fake trusts it.
LOCAL_INVOKER_SA = "meet-invoker@local-dev.iam.gserviceaccount.com"
IDENTITY_ENV = ("GOOGLE_SIGNING_KEY_FILE", "GOOGLE_DELEGATION_SA")


@pytest.fixture(scope="session", autouse=True)
def google_identity(tmp_path_factory):
    """The delegation identity functions run with locally: a signing key the fake trusts, and its service account.

    In the environment for the whole session, so functions started as subprocesses have it too."""
    from dev.fake_google.identity import ensure_private_key

    keys = tmp_path_factory.mktemp("google-identity")
    key_file = ensure_private_key(keys / "delegation-key.pem")
    invoker_key = ensure_private_key(keys / "invoker-key.pem")
    saved = {name: os.environ.get(name) for name in IDENTITY_ENV}
    os.environ.update(GOOGLE_SIGNING_KEY_FILE=str(key_file), GOOGLE_DELEGATION_SA=LOCAL_DELEGATION_SA)
    yield SimpleNamespace(key_file=key_file, service_account=LOCAL_DELEGATION_SA, private_key=key_file.read_text(),
                          invoker=LOCAL_INVOKER_SA, invoker_key=invoker_key)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def fake_google(google_identity):
    """The product's fake Google Workspace on loopback, shared by the session, reset per test by users."""
    from dev.fake_google import FakeGoogle

    server = FakeGoogle(service_accounts={google_identity.service_account: google_identity.private_key,
                                          google_identity.invoker: google_identity.invoker_key.read_text()}).start()
    yield server
    server.stop()


@pytest.fixture
def google(fake_google):
    """A freshly reset fake Google and its control client."""
    control = fake_google.control()
    control.reset()
    yield control
    control.close()


FAST_GOOGLE = {
    "GOOGLE_NUM_RETRIES": "1",
    "CONFERENCE_WAIT_SECONDS": "1.5",
    "CONFERENCE_POLL_INTERVAL_SECONDS": "0.05",
    "RETRY_AFTER_SECONDS": "2",
}


# The clinic's Workspace in miniature, as `make run` has it (the fake's default domain and calendar owner).
LOCAL_WORKSPACE = {"WORKSPACE_DOMAIN": "clinica.com", "DEFAULT_CALENDAR_OWNER": "agenda@clinica.com"}


@pytest.fixture
def function_env(monkeypatch, pg_url, fake_google, google):
    """The environment a function runs with locally: DATABASE_URL and GOOGLE_API_ROOT, the delegation identity
    (google_identity), the local Workspace, fast timings; the fake is reset first, so what the test's functions
    make in Google (events, and the Meet spaces their owners hold) outlives the test's own `google` fixture."""
    from shared import bootstrap

    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("GOOGLE_API_ROOT", fake_google.url)
    for key, value in LOCAL_WORKSPACE.items():
        monkeypatch.setenv(key, value)
    for key, value in FAST_GOOGLE.items():
        monkeypatch.setenv(key, value)
    bootstrap.reset()
    yield
    bootstrap.reset()


@pytest.fixture(scope="session")
def tasks_emulator(tmp_path_factory, fake_google, google_identity):
    """The Cloud Tasks emulator with queue meet-tasks, shared by the session; task names must be unique per test.

    Tasks that ask for an OIDC token get one of LOCAL_INVOKER_SA (the only account it may act as), from the fake."""
    from types import SimpleNamespace

    from dev.emulators import start_cloud_tasks
    from dev.ports import free_port

    project, location, queue = "meet-test", "us-central1", "meet-tasks"
    emulator = start_cloud_tasks(free_port(), project=project, location=location, queue=queue,
                                 max_retries=2, log_dir=tmp_path_factory.mktemp("tasks-emulator"),
                                 oidc={"token_uri": fake_google.token_uri,
                                       "keys": {google_identity.invoker: str(google_identity.invoker_key)}})
    yield SimpleNamespace(host_port=emulator.host_port, invoker=google_identity.invoker,
                          queue_path=f"projects/{project}/locations/{location}/queues/{queue}")
    emulator.stop()


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory):
    """One Firestore emulator for the session, selected through FIRESTORE_EMULATOR_HOST; skipped without gcloud."""
    import shutil
    from types import SimpleNamespace

    from dev import emulators
    from dev.ports import free_port

    if shutil.which("gcloud") is None:
        pytest.skip("gcloud (Cloud SDK) with the Firestore emulator is not installed")
    project = "meet-test"
    emulator = emulators.start_firestore(free_port(), project=project,
                                         log_dir=tmp_path_factory.mktemp("firestore-logs"))
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host_port
    try:
        yield SimpleNamespace(host_port=emulator.host_port, project=project, emulator=emulator)
    finally:
        if previous is None:
            os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
        emulator.stop()


@pytest.fixture
def receiver():
    """A loopback HTTP target recording what Cloud Tasks delivers to it."""
    from tests.receiver import Receiver

    target = Receiver()
    yield target
    target.close()
