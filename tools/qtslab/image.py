"""The image: one Debian root filesystem per release, made once with debootstrap under
lab/images/ and rebuilt when its recipe changes (release, packages, masked units, user, this
machine's CA certificates, the fix-ups' version); every host of that release boots it
read-only."""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import shutil
import time
from pathlib import Path

from .common import (
    DISTROS,
    HOST_PIP_CACHE,
    IMAGE_FIXUPS_VERSION,
    IMAGES,
    MASKED_UNITS,
    MIRROR,
    PACKAGES,
    LabError,
    log,
    read_text,
    run,
    write_file,
)
from .config import locked


def local_ca_certificates() -> dict[str, bytes]:
    """This machine's own certificate authorities: the hosts trust what it trusts (an egress
    proxy's CA, a company CA), or pip inside them cannot reach the package index."""
    folder = Path("/usr/local/share/ca-certificates")
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.crt"))} if folder.is_dir() else {}


def image_recipe(distro: str, user: str) -> dict:
    return {
        "suite": DISTROS[distro],
        "variant": "minbase",
        "mirror": MIRROR,
        "packages": list(PACKAGES),
        "masked": list(MASKED_UNITS),
        "user": user,
        "ca_certificates": {
            name: hashlib.sha256(data).hexdigest() for name, data in local_ca_certificates().items()
        },
        "fixups": IMAGE_FIXUPS_VERSION,
    }


def image_dir(distro: str) -> Path:
    return IMAGES / f"debian-{distro}"


def image_fixups(rootfs: Path, user: str) -> None:
    """What a lab host needs from its image beyond the packages."""
    for key in rootfs.glob("etc/ssh/ssh_host_*"):
        key.unlink()  # each host gets its own
    write_file(rootfs / "etc" / "machine-id", "")  # each host gets its own
    for unit in MASKED_UNITS:
        link = rootfs / "etc" / "systemd" / "system" / unit
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to("/dev/null")
    for wants in rootfs.glob("etc/systemd/system/*.wants/getty@*.service"):
        wants.unlink()
    for name, data in local_ca_certificates().items():
        write_file(rootfs / "usr" / "local" / "share" / "ca-certificates" / name, data)
    run(["chroot", str(rootfs), "update-ca-certificates", "--fresh"], "update-ca-certificates")
    # pip of Debian's venvs uses its own CA bundle unless told to use the system's; its cache
    # is the lab's shared one.
    write_file(
        rootfs / "etc" / "pip.conf",
        f"[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ncache-dir = {HOST_PIP_CACHE}\n",
    )
    useradd = [
        "useradd",
        "--create-home",
        "--shell",
        "/bin/bash",
        "--user-group",
        "--password",
        "*",
    ]
    run(["chroot", str(rootfs), *useradd, "--comment", "lab deploy user", user], "useradd")
    write_file(
        rootfs / "etc" / "sudoers.d" / "lab-user", f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440
    )
    (rootfs / "var" / "log" / "journal").mkdir(exist_ok=True)  # a persistent journal
    # A locale, or pam_env logs an error at every login (Debian 13 links it to locale.conf).
    locale = rootfs / "etc" / "default" / "locale"
    write_file(rootfs / "etc" / "locale.conf" if locale.is_symlink() else locale, "LANG=C.UTF-8\n")


def ensure_image(distro: str, user: str) -> Path:
    """The image's root filesystem, built once per recipe (debootstrap, about a minute)."""
    recipe = image_recipe(distro, user)
    folder = image_dir(distro)
    # One lock per image: the two releases build side by side (debootstrap mostly waits
    # for the mirror), and two labs never build one image twice.
    with locked(IMAGES / f".lock-debian-{distro}"):
        recipe_file = folder / "recipe.json"
        if (folder / "rootfs").is_dir() and read_text(recipe_file) == json.dumps(recipe, indent=2):
            return folder / "rootfs"
        started = time.monotonic()
        log(f"image debian-{distro}: building with debootstrap ({recipe['suite']}, {MIRROR})")
        building = IMAGES / f".building-debian-{distro}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        argv = [
            "debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
            recipe["suite"], str(building / "rootfs"), MIRROR,
        ]  # fmt: skip
        try:
            run(argv, "debootstrap", timeout=1800)
            image_fixups(building / "rootfs", user)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        write_file(building / "recipe.json", json.dumps(recipe, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        building.rename(folder)
        log(f"image debian-{distro}: built in {time.monotonic() - started:.0f} s")
        return folder / "rootfs"


def ensure_images(distros: list[str], user: str) -> dict[str, Path]:
    """Each release's image, built side by side where missing."""
    wanted = sorted(set(distros))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        built = {distro: pool.submit(ensure_image, distro, user) for distro in wanted}
        return {distro: future.result() for distro, future in built.items()}


def image_user_ids(rootfs: Path, user: str) -> tuple[int, int, str]:
    for line in (read_text(rootfs / "etc" / "passwd") or "").splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3]), fields[5]
    raise LabError(f"user {user} is not in the image {rootfs}: remove lab/images to rebuild it")
