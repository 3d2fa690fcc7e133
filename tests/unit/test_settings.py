"""Where the state lives: FIREBREAK_HOME resolved once, to an absolute path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firebreak.settings import Settings


def test_a_relative_home_means_the_folder_it_was_first_read_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.setenv("FIREBREAK_HOME", f"relative-home-{os.getpid()}")
    monkeypatch.chdir(first)
    before = Settings.from_env()
    monkeypatch.chdir(second)  # a later step that changes directory finds the same state
    after = Settings.from_env()
    assert before.home == after.home == first / f"relative-home-{os.getpid()}"
    assert after.home.is_absolute() and after.state_db_url == f"sqlite:///{first / before.home.name / 'state.db'}"
    assert after.ensure_home() is True and after.ensure_home() is False
