"""The examples the docs print, run as printed against the stack: the integration guide's and the README's."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests

from tests.e2e.tools import ROOT, mint_key

GUIDE = ROOT / "docs" / "guia-integracion.md"
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def blocks(text: str, language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(text) if lang == language]


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)


def test_the_guides_curl_examples_run_in_order(stack, tmp_path):
    script = "set -euo pipefail\n" + "\n".join(blocks(GUIDE.read_text(), "sh"))
    env = dict(os.environ, MEET_API=stack.base, MEET_API_KEY=mint_key(stack))
    out = run(["bash", "-c", script], env, tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    said = out.stdout
    assert '"status":"ok"' in said and '"status":"CREATED"' in said and '"status":"CANCELLED"' in said
    assert re.search(r"(?i)^idempotent-replayed: true", said, re.M), said
    # The patient-safe room is applied, then changed field by field; the doctor's day shows the slot busy, and a
    # second appointment over it is refused with its conflicts.
    assert '"room":{"access_type":"RESTRICTED","auto_recording":true,"auto_transcription":false,"state":"APPLIED"}' \
        in said, said
    assert '"auto_transcription":true,"state":"APPLIED"' in said and '"busy":[{"start":' in said, said
    assert re.search(r'"conflicts": \[\{"start": "\d{4}-11-27T14:15:00Z", "end": "\d{4}-11-27T14:30:00Z"\}\]',
                     said), said
    assert [int(code) for code in re.findall(r"^HTTP (\d{3})$", said, re.M)] == [409, 422, 409, 401], said


def test_the_guides_python_examples_run_in_order(stack, tmp_path):
    script = "\n\n".join(blocks(GUIDE.read_text(), "python"))
    env = dict(os.environ, MEET_API=stack.base, MEET_API_KEY=mint_key(stack))
    out = run([sys.executable, "-c", script], env, tmp_path)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    said = out.stdout
    assert "CANCELLED" in said and "201 200 True" in said, said
    assert "sala: {'access_type': 'RESTRICTED', 'auto_recording': True, 'auto_transcription': False, " \
           "'state': 'APPLIED'}" in said, said
    assert re.search(r"^ocupado: \[\('\d{4}-", said, re.M) and "horario ocupado, no se creó: [{'start'" in said, said
    codes = [int(code) for code in re.findall(r"^\((\d{3}), ", said, re.M)]
    assert codes == [422, 422, 409, 404], said


def test_the_guide_covers_every_section_with_both_kinds_of_example():
    text = GUIDE.read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    for section in sections:
        title = section.splitlines()[0]
        if "Estados" in title:
            continue
        assert blocks(section, "sh") and blocks(section, "python"), title
    for topic in ("Crear", "Leer", "Listar", "Reprogramar", "Cancelar", "Asistencia", "Grabaciones", "Salas",
                  "Reintentos", "Errores"):
        assert any(s.split("\n", 1)[0].split(" ", 1)[-1].startswith(topic) for s in sections), topic
    assert "docs/guia-integracion.md" in README.read_text()


def test_the_readme_quick_start_runs_as_printed(stack, tmp_path):
    """The README's quick start shell blocks, with only the stack's address and key file swapped in."""
    quick_start = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [b for b in blocks(quick_start, "sh") if b.strip() not in ("make run",) and "chromium" not in b]
    assert len(commands) == 2
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "dev-api-key").write_text(mint_key(stack))
    script = "set -euo pipefail\n" + "\n".join(commands).replace("http://127.0.0.1:8080", stack.base)
    out = run(["bash", "-c", script], dict(os.environ), tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    answers = re.findall(r'"status":"(\w+)"', out.stdout)
    assert answers[0] == "CREATED" and answers[-1] == "CANCELLED", out.stdout
    assert re.search(r'"scheduled_start":"\d{4}-11-25T16:00:00Z","scheduled_end":"\d{4}-11-25T16:30:00Z"',
                     out.stdout), out.stdout


def test_make_help_lists_every_target_the_readme_names():
    named = set(re.findall(r"`make ([a-z0-9-]+)", README.read_text()))
    listed = {line.split()[0] for line in run(["make", "-s", "help"], dict(os.environ), ROOT).stdout.splitlines()}
    assert named and named <= listed, named - listed


def test_the_docs_page_names_its_document(stack):
    page = requests.get(f"{stack.base}/v1/docs", timeout=10).text
    assert "/v1/openapi.json" in page and "swagger-ui-bundle.js" in page
