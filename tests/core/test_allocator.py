"""The allocator settings take effect on glibc, and are harmless to repeat."""

from __future__ import annotations

import platform

import pytest

from llm_anatomy_tui.core.allocator import return_freed_memory_to_the_system


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_both_settings_and_a_repeat():
    assert return_freed_memory_to_the_system() is True
    assert return_freed_memory_to_the_system() is True


def test_without_a_c_library_it_says_so(monkeypatch):
    import ctypes

    def no_library(*_args, **_kwargs):
        raise OSError("no libc here")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    assert return_freed_memory_to_the_system() is False
