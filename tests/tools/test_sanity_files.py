"""make sanity checks the collection as ansible-galaxy ships it: the files its tarball holds
(galaxy.yml's build_ignore left out) and the sanity ignore files, nothing of the checkout's
own tooling."""

from __future__ import annotations

import tarfile

import pytest
import sanity
from stressrun import ROOT, build_tarball

pytestmark = pytest.mark.process


def test_sanity_copies_exactly_what_the_tarball_ships_and_its_ignore_files(tmp_path):
    copied = set(sanity.checkout_files())
    with tarfile.open(build_tarball(tmp_path)) as tar:
        # The tarball adds what the build writes itself (MANIFEST.json, FILES.json).
        shipped = {m.name for m in tar.getmembers() if m.isfile()} - {"MANIFEST.json", "FILES.json"}
    ignore_files = {name for name in copied if name.startswith("tests/")}
    assert ignore_files and all(name.startswith("tests/sanity/ignore-") for name in ignore_files)
    # galaxy.yml becomes the tarball's MANIFEST.json (ansible-test reads it in a checkout);
    # .gitignore keeps ansible-test's own output (tests/output) out of what it checks.
    kept = {"galaxy.yml", ".gitignore"}
    assert copied - ignore_files == shipped | kept, (copied - ignore_files) ^ (shipped | kept)
    for tooling in (
        "tools/sanity.py",
        "tests/conftest.py",
        "benchmarks/bench_scale.py",
        "Makefile",
    ):
        assert (ROOT / tooling).is_file() and tooling not in copied
