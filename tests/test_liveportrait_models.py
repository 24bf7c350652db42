"""`stream-animator models`: present / verified / missing / bad weights, and --download through the
installer's resumable, checked downloader (from a local HTTP server: nothing leaves the machine)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import pytest

from worker.cli import main
from worker.render.liveportrait import availability, weights

NAMES = ("appearance_feature_extractor", "motion_extractor", "warping_spade", "stitching", "stitching_eye",
         "stitching_lip")  # fmt: skip


@pytest.fixture()
def server():
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    srv.files = files
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def _manifest(tmp_path, server):
    models = []
    for n in NAMES:
        body = (n.encode() + b"-weights-") * 1000
        server.files[f"/{n}.onnx"] = body
        models.append({"path": f"liveportrait/{n}.onnx", "url": f"{server.url}/{n}.onnx", "size": len(body),
                       "sha256": hashlib.sha256(body).hexdigest()})  # fmt: skip
    p = tmp_path / "manifest.json"
    p.write_text(json.dumps({"format": 1, "models": models}))
    return p


def test_repository_manifest_has_verified_hashes_for_all_six():
    entries = weights.load_entries()
    assert sorted(e.path.split("/")[1][:-5] for e in entries) == sorted(NAMES)
    assert all(e.sha256 and len(e.sha256) == 64 for e in entries)
    assert all(
        e.url.startswith("https://github.com/visomaster/visomaster-assets/releases/download/v1.0.0/") for e in entries
    )


def test_models_command_check_download_and_bad_files(tmp_path, server, capsys):
    manifest = _manifest(tmp_path, server)
    d = tmp_path / "models"
    base = ["models", "--models-dir", str(d), "--manifest", str(manifest)]
    assert main([*base, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert not out["ready"] and {f["state"] for f in out["files"]} == {"missing"}
    assert main([*base, "--check"]) == 1
    assert "MISSING" in capsys.readouterr().out
    # download: every file fetched, verified, with progress lines
    assert main([*base, "--download"]) == 0
    text = capsys.readouterr().out
    assert "100%" in text and "all present and verified" in text
    assert all((d / "liveportrait" / f"{n}.onnx").is_file() for n in NAMES)
    assert main([*base, "--check"]) == 0
    capsys.readouterr()
    # a damaged file is named as bad and --download replaces it
    f = d / "liveportrait" / "stitching.onnx"
    f.write_bytes(b"x" * f.stat().st_size)
    assert main([*base, "--check", "--json"]) == 1
    states = {r["path"]: r["state"] for r in json.loads(capsys.readouterr().out)["files"]}
    assert states["liveportrait/stitching.onnx"] == "mismatch"
    assert main([*base, "--download"]) == 0
    assert f.read_bytes() == server.files["/stitching.onnx"]
    capsys.readouterr()
    # a server serving the wrong bytes: one line, non-zero, nothing renamed into place
    f.unlink()
    server.files["/stitching.onnx"] = b"tampered" * 1000
    assert main([*base, "--download"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "stitching.onnx" in err[0] and not f.exists()


def test_availability_names_what_is_missing(tmp_path):
    ok, reason = availability(tmp_path / "none")
    assert not ok and "missing" in reason and "stream-animator models --download" in reason and "\n" not in reason


def test_models_command_groups_the_optional_animal_set(tmp_path, server, capsys):
    manifest = _manifest(tmp_path, server)
    data = json.loads(manifest.read_text())
    data["models"] += [
        {"path": f"liveportrait_animal/{n}.onnx", "url": f"{server.url}/animal/{n}.onnx", "size": None,
         "sha256": None, "optional": True}
        for n in NAMES
    ]  # fmt: skip
    manifest.write_text(json.dumps(data))
    d = tmp_path / "models"
    base = ["models", "--models-dir", str(d), "--manifest", str(manifest)]
    # the human set downloads; the animal files without a published hash are skipped, one line each
    assert main([*base, "--download"]) == 0
    text = capsys.readouterr().out
    assert text.count("skipped  liveportrait_animal/") == 6 and "all present and verified" in text
    assert not (d / "liveportrait_animal").exists()
    assert main([*base]) == 0
    text = capsys.readouterr().out
    order = ["liveportrait human set (required)", "liveportrait/stitching.onnx", "liveportrait animal set", "_animal/"]
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    assert main([*base, "--check", "--json"]) == 0  # ready means the human set
    out = json.loads(capsys.readouterr().out)
    assert out["ready"] and out["sets"] == {"human": True, "animal": False}
    assert {f["state"] for f in out["files"] if f["set"] == "animal"} == {"missing"}
