"""Result provenance: the commit of the code's own work tree, dirty or not, or None."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import flowbridge
from flowbridge.provenance import measured, peak_rss_mib, source_commit, versions


def _git(folder, *args):
    return subprocess.run(
        ["git", *args], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    try:
        _git(tmp_path, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "bench.py").write_text("print(1)\n", encoding="utf-8")
    _git(tmp_path, "add", "bench.py")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_the_commit_of_the_tree_holding_a_file_and_whether_it_was_edited(repo, monkeypatch):
    head = _git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir("/")  # the caller's folder does not matter
    assert source_commit(repo / "bench.py") == head
    (repo / "untracked.txt").write_text("x", encoding="utf-8")  # untracked files leave it clean
    assert source_commit(repo) == head
    (repo / "bench.py").write_text("print(2)\n", encoding="utf-8")
    assert source_commit(repo / "bench.py") == f"{head}-dirty"


def test_no_commit_outside_a_work_tree(tmp_path):
    assert source_commit(tmp_path) is None


def test_no_commit_for_code_git_does_not_track_in_the_tree(repo):
    # An installed wheel in a virtual environment inside the user's own repository.
    installed = repo / ".venv" / "lib" / "site-packages" / "flowbridge"
    installed.mkdir(parents=True)
    (installed / "provenance.py").write_text("", encoding="utf-8")
    (repo / ".gitignore").write_text(".venv/\n", encoding="utf-8")
    assert source_commit(installed / "provenance.py") is None
    assert source_commit(installed) is None


def test_a_link_to_tracked_code_names_its_commit(repo):
    # A strict editable install reaches the source through links in a folder git ignores.
    links = repo / "build" / "links"
    links.mkdir(parents=True)
    (repo / ".gitignore").write_text("build/\n", encoding="utf-8")
    (links / "bench.py").symlink_to(repo / "bench.py")
    assert source_commit(links / "bench.py") == _git(repo, "rev-parse", "HEAD")


def test_versions_name_the_code_in_use(repo):
    info = versions(repo)
    assert info["commit"] == _git(repo, "rev-parse", "HEAD")
    assert info["flowbridge"] == flowbridge.__version__
    assert info["torch"] == torch.__version__
    assert set(info) == {"commit", "flowbridge", "torch", "python"}


def test_measured_says_when_and_on_what_machine():
    info = measured()
    assert set(info) == {"date_utc", "platform", "cpu_count", "load_average"}
    assert info["date_utc"].endswith("+00:00") and info["cpu_count"] == os.cpu_count()


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss counts KiB on Linux")
def test_peak_memory_is_in_mib_on_macos_too_and_none_without_resource(monkeypatch):
    linux = peak_rss_mib()
    assert 10 < linux < 10**6  # torch alone takes tens of MiB; bytes read as KiB would say GiB
    monkeypatch.setattr(sys, "platform", "darwin")  # where ru_maxrss counts bytes
    assert peak_rss_mib() == pytest.approx(linux / 1024, rel=0.1)
    monkeypatch.setitem(sys.modules, "resource", None)  # Windows has none: import fails
    assert peak_rss_mib() is None
