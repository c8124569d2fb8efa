"""The options of the kernel's config the suite's skips are checked against (conformance.kconfig),
and the fault-injection skip that reads them (no boot)."""
from __future__ import annotations

import pytest

from conformance import faultinject, kconfig


def test_the_host_passes_each_asked_option_and_off_for_the_rest():
    text = kconfig.render({"CONFIG_FAULT_INJECTION": "y", "CONFIG_OTHER": "y"}).decode()
    assert kconfig.parse(text) == {"CONFIG_FAULT_INJECTION": "y", "CONFIG_FAILSLAB": "n",
                                   "CONFIG_FAULT_INJECTION_DEBUG_FS": "n", "CONFIG_BPF_SYSCALL": "n"}
    assert "CONFIG_OTHER" not in text


def test_the_guest_reads_only_what_was_asked(tmp_path, monkeypatch):
    f = tmp_path / kconfig.FILE
    f.write_bytes(b"CONFIG_FAILSLAB=y\nCONFIG_EVIL=$(reboot)\n\xff\xfe=junk\n" + b"x" * 10_000)
    monkeypatch.setenv(kconfig.ENV, str(f))
    assert kconfig.known() == {"CONFIG_FAILSLAB": "y"}
    monkeypatch.setenv(kconfig.ENV, str(tmp_path / "missing"))
    assert kconfig.known() is None
    monkeypatch.delenv(kconfig.ENV)
    assert kconfig.known() is None


@pytest.mark.parametrize("config, has_interface, expect", [
    ({n: "y" for n in faultinject.NEEDS}, True, None),
    ({n: "y" for n in faultinject.NEEDS}, False, AssertionError),  # the config promises it: no skip
    ({"CONFIG_FAULT_INJECTION": "n"}, False, "config does not set"),
    (None, False, "unchecked"),
])
def test_the_fault_injection_skip_is_a_checked_claim(config, has_interface, expect, tmp_path, monkeypatch):
    if config is None:
        monkeypatch.delenv(kconfig.ENV, raising=False)
    else:
        f = tmp_path / kconfig.FILE
        f.write_bytes(kconfig.render(config))
        monkeypatch.setenv(kconfig.ENV, str(f))
    nth, slab = tmp_path / "fail-nth", tmp_path / "failslab"
    if has_interface:
        nth.write_text("0")
        slab.mkdir()
    monkeypatch.setattr(faultinject, "FAIL_NTH", str(nth))
    monkeypatch.setattr(faultinject, "FAILSLAB", str(slab))
    if expect is AssertionError:
        with pytest.raises(AssertionError, match="promises"):
            faultinject.missing()
    elif expect is None:
        assert faultinject.missing() is None
    else:
        assert expect in faultinject.missing()
