"""`make run` (python -m dev.stack) fails fast, in one line, when the machine lacks what it needs; and what it gives
its children to keep third-party noise out of its output."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from dev import prerequisites
from dev.ports import free_port
from dev.stack import API_CORE_NOTICE, quiet_environment

ROOT = Path(__file__).resolve().parents[2]


def executable(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


def java_reporting(path: Path, version: str) -> Path:
    return executable(path, f"echo 'openjdk version \"{version}\" 2025-04-15' >&2")


def run_stack(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    base = {k: v for k, v in os.environ.items() if k not in ("JAVA", "JAVA_HOME", "GOOGLE_API_ROOT")}
    state = tmp_path / "state"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dev.stack"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**base, "LOCAL_STATE_DIR": str(state), "GATEWAY_PORT": str(free_port()), **env})
    elapsed = time.monotonic() - started
    assert not state.exists(), "the check must come before anything is started or written"
    assert "Traceback" not in done.stderr and done.stdout == ""
    return done, elapsed


def one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@contextlib.contextmanager
def taken_port():
    """A port something listens on, as another program's would be."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_gateway_port_in_use_is_one_line_before_anything_starts(tmp_path):
    with taken_port() as port:
        done, elapsed = run_stack(tmp_path, GATEWAY_PORT=str(port))
    assert one_line(done) == f"make run: port {port} is in use (set GATEWAY_PORT to another port)"
    assert elapsed < 10  # no database, no emulator, no function was started first


def test_a_fixed_fake_google_port_in_use_names_its_setting(tmp_path):
    with taken_port() as port:
        done, _ = run_stack(tmp_path, FAKE_GOOGLE_PORT=str(port))
    assert one_line(done) == f"make run: port {port} is in use (set FAKE_GOOGLE_PORT to another port)"


def test_a_gateway_port_that_is_no_port_is_one_line(tmp_path):
    done, _ = run_stack(tmp_path, GATEWAY_PORT="80a")
    assert one_line(done) == "make run: GATEWAY_PORT must be a port number from 1 to 65535, not '80a'"


def test_no_java_on_path_is_one_line(tmp_path):
    executable(tmp_path / "bin" / "gcloud", "exit 0")  # the Cloud SDK is there, Java is not
    done, elapsed = run_stack(tmp_path, PATH=str(tmp_path / "bin"))
    assert one_line(done) == (f"make run: the Firestore emulator needs Java {prerequisites.FALLBACK_JAVA}+ "
                              "(java not found on PATH or in JAVA_HOME)")
    assert elapsed < 10


def test_a_java_too_old_is_one_line(tmp_path):
    executable(tmp_path / "bin" / "gcloud", "exit 0")
    java_reporting(tmp_path / "bin" / "java", "1.8.0_392")
    done, _ = run_stack(tmp_path, PATH=str(tmp_path / "bin"))
    assert one_line(done) == (f"make run: the Firestore emulator needs Java {prerequisites.FALLBACK_JAVA}+ "
                              "(found Java 8; put a newer java on PATH or set JAVA_HOME)")


def test_no_gcloud_is_one_line(tmp_path):
    java_reporting(tmp_path / "bin" / "java", "17.0.15")
    done, _ = run_stack(tmp_path, PATH=str(tmp_path / "bin"))
    assert one_line(done) == ("make run: the Firestore emulator needs the Google Cloud SDK with its "
                              "cloud-firestore-emulator component (gcloud not found on PATH)")


def test_java_home_serves_when_no_java_is_on_path(tmp_path):
    home_java = java_reporting(tmp_path / "jdk" / "bin" / "java", "21.0.2")
    (tmp_path / "bin").mkdir()
    environ = {"PATH": str(tmp_path / "bin"), "JAVA_HOME": str(tmp_path / "jdk")}
    # The emulator's launcher runs $JAVA, else the java on PATH: it is handed JAVA_HOME's explicitly.
    assert prerequisites.java(environ) == {"JAVA": str(home_java)}
    java_reporting(tmp_path / "bin" / "java", "17.0.1")
    assert prerequisites.java(environ) == {}  # a java on PATH is the one the launcher runs anyway
    with pytest.raises(prerequisites.Missing, match=r"java not found on PATH, nor in JAVA_HOME/bin"):
        prerequisites.java({"PATH": str(tmp_path / "none"), "JAVA_HOME": str(tmp_path / "no-jdk")})


def test_the_java_needed_is_the_one_the_installed_emulator_was_compiled_for(tmp_path):
    gcloud = executable(tmp_path / "sdk" / "bin" / "gcloud", "exit 0")
    jar = tmp_path / "sdk" / prerequisites.FIRESTORE_JAR
    jar.parent.mkdir(parents=True)
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        archive.writestr("com/example/Emulator.class", b"\xca\xfe\xba\xbe\x00\x00\x00\x41" + bytes(16))  # 65: 21
    assert prerequisites.required_java(gcloud) == 21
    java_reporting(tmp_path / "bin" / "java", "17.0.15")
    with pytest.raises(prerequisites.Missing, match=r"needs Java 21\+ \(found Java 17;"):
        prerequisites.java({"PATH": str(tmp_path / "bin")}, gcloud)
    assert prerequisites.required_java(tmp_path / "elsewhere" / "bin" / "gcloud") == prerequisites.FALLBACK_JAVA


def test_the_stack_quiets_grpc_and_the_python_version_notice_unless_told_otherwise():
    added = quiet_environment({})
    assert added == {"GRPC_VERBOSITY": "ERROR", "GRPC_ENABLE_FORK_SUPPORT": "false", "PYTHONWARNINGS": API_CORE_NOTICE}
    mine = quiet_environment({"GRPC_VERBOSITY": "DEBUG", "GRPC_ENABLE_FORK_SUPPORT": "1", "PYTHONWARNINGS": "error"})
    # The developer's own settings stay, and their warning filters come last, so they win.
    assert mine == {"PYTHONWARNINGS": f"{API_CORE_NOTICE},error"}
    assert quiet_environment({"PYTHONWARNINGS": API_CORE_NOTICE}) == {"GRPC_VERBOSITY": "ERROR",
                                                                      "GRPC_ENABLE_FORK_SUPPORT": "false"}


def test_the_quieted_grpc_drops_its_fork_notice_and_other_warnings_still_show(tmp_path):
    """gRPC's own behaviour under the stack's settings: its fork notice is gone; a warning of another origin is not."""
    script = tmp_path / "grpc_fork.py"
    script.write_text(
        "import os, sys, threading, time, warnings\n"
        "import grpc\n"
        "channel = grpc.insecure_channel('127.0.0.1:1')\n"
        "def spin():\n"
        "    while True:\n"
        "        try:\n"
        "            grpc.channel_ready_future(channel).result(timeout=0.05)\n"
        "        except Exception:\n"
        "            pass\n"
        "for _ in range(3):\n"
        "    threading.Thread(target=spin, daemon=True).start()\n"
        "time.sleep(0.3)\n"
        "for _ in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "warnings.warn('a warning of our own', FutureWarning)\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("GRPC_") and k != "PYTHONWARNINGS"}

    def stderr_of(env: dict[str, str]) -> str:
        return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                              timeout=60).stderr

    assert "skipping fork() handlers" in stderr_of(base)  # what `make run` printed before
    quiet = stderr_of({**base, **quiet_environment(base)})
    # gRPC's notice is gone; others' warnings are not hidden (Python 3.12's own notice of a fork in a threaded
    # process, which this script provokes, among them).
    assert "skipping fork() handlers" not in quiet and "a warning of our own" in quiet
