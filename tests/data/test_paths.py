"""Where prepared data goes: argument, then $CLJAX_DATA_DIR, then the cache."""

from __future__ import annotations

from cljax.data import paths


def test_argument_then_environment_then_xdg_then_home(tmp_path, monkeypatch):
  monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
  monkeypatch.setenv("CLJAX_DATA_DIR", str(tmp_path / "env"))
  assert paths.data_dir() == str(tmp_path / "env")
  assert paths.data_dir(str(tmp_path / "arg")) == str(tmp_path / "arg")
  monkeypatch.delenv("CLJAX_DATA_DIR")
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert paths.data_dir() == str(tmp_path / "xdg/cljax/data")
  monkeypatch.delenv("XDG_CACHE_HOME")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert paths.data_dir() == str(tmp_path / "home" / ".cache" / "cljax" /
                                 "data")
