"""The functions' dependency layer, built by ``make setup`` from the pins the tests and the local workers run.

``python -m infra.layer``          build ``build/lambda-layer`` unless it already holds exactly these pins
``python -m infra.layer --print``  print the requirements only

What the handlers import besides the standard library and the runtime's boto3/botocore is :data:`ROOTS`; each is
pinned exactly in ``pyproject.toml``. Their own dependencies (pydantic-core, typing-extensions, wrapt, …) are taken
at the version installed in this virtualenv, i.e. the one the local workers and the tests import (pydantic pins
pydantic-core exactly; the others pyproject leaves to pip, which resolved them in ``make setup``). Every requirement is
then installed with ``--no-deps`` as a wheel for the Lambda platform (:data:`PLATFORM_ARGS`: CPython 3.13 on
arm64), so pip resolves nothing: the layer holds that list and nothing else. boto3/botocore (and what only they
need) stay out: the python3.13 runtime provides them (docs/AWS-REVIEW.md §13).

The stamp file holds the digest of the requirements and platform arguments; ``infra/constructs/functions.py`` uses
it as the layer asset's hash (no fingerprinting of the folder at each synth) and refuses to synthesize when the
folder is missing or was built for other pins.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
#: The layer asset's folder: ``python/`` inside it is what Lambda puts on the path (``/opt/python``).
LAYER_DIR = Path(os.environ.get("TASKRAIL_LAYER_DIR") or ROOT / "build" / "lambda-layer")
STAMP_NAME = ".pins.sha256"
#: What ``lambdas/`` imports that the runtime does not provide (tests/infra/test_lambda_layer.py checks the imports).
ROOTS = ("aws-lambda-powertools", "pydantic", "aws-xray-sdk")
#: Provided by the Lambda python3.13 runtime; never shipped (nor what only they require).
RUNTIME_PROVIDED = ("boto3", "botocore")
PYTHON_VERSION = "3.13"
PLATFORM_ARGS = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    PYTHON_VERSION,
    "--abi",
    "cp313",
    "--only-binary=:all:",
)
#: The environment the layer's markers are evaluated in: Lambda's python3.13 on arm64 Linux.
TARGET_ENVIRONMENT = {
    "python_version": PYTHON_VERSION,
    "python_full_version": f"{PYTHON_VERSION}.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "extra": "",
}


class LayerNotBuilt(RuntimeError):
    pass


def pyproject_pins() -> dict[str, str]:
    """Canonical name → exact version of every ``name==version`` dependency of pyproject.toml."""
    pins: dict[str, str] = {}
    for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        if specifier.operator != "==":
            raise ValueError(f"pyproject.toml: {line!r} is not an exact pin")
        pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _applies(requirement: Requirement) -> bool:
    return requirement.marker is None or Marker(str(requirement.marker)).evaluate(dict(TARGET_ENVIRONMENT))


def requirements() -> dict[str, str]:
    """Canonical name → version of everything the layer holds: :data:`ROOTS` at their pyproject pins and their
    dependencies (no extras) at the versions installed here, boto3/botocore excluded."""
    pins = pyproject_pins()
    excluded = {canonicalize_name(name) for name in RUNTIME_PROVIDED}
    found: dict[str, str] = {}
    pending = [canonicalize_name(name) for name in ROOTS]
    if unpinned := [name for name in pending if name not in pins]:
        raise ValueError(f"pyproject.toml pins none of {unpinned}, which the layer ships")
    while pending:
        name = pending.pop()
        if name in found or name in excluded:
            continue
        try:
            installed = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise LayerNotBuilt(f"{name} is not installed in this virtualenv: run make setup") from None
        if name in pins and installed.version != pins[name]:
            raise LayerNotBuilt(f"{name} {installed.version} is installed, pyproject pins {pins[name]}: run make setup")
        found[name] = installed.version
        for line in installed.requires or []:
            requirement = Requirement(line)
            dependency = canonicalize_name(requirement.name)
            if _applies(requirement) and dependency not in excluded:
                pending.append(dependency)
    return dict(sorted(found.items()))


def requirement_lines(pinned: dict[str, str] | None = None) -> list[str]:
    return [f"{name}=={version}" for name, version in (pinned or requirements()).items()]


def digest(lines: list[str] | None = None) -> str:
    text = "\n".join([*(lines or requirement_lines()), *PLATFORM_ARGS])
    return hashlib.sha256(text.encode()).hexdigest()


def built_digest(layer_dir: Path | None = None) -> str:
    """The digest of the built layer, checked against the current pins (the layer asset's hash)."""
    layer_dir = layer_dir or LAYER_DIR
    stamp = layer_dir / STAMP_NAME
    if not stamp.is_file() or not (layer_dir / "python").is_dir():
        raise LayerNotBuilt(f"the functions' dependency layer {layer_dir} is missing: run make setup")
    expected = digest()
    if stamp.read_text().strip() != expected:
        raise LayerNotBuilt(f"{layer_dir} was built for other pins than pyproject.toml's: run make setup")
    return expected


def build(layer_dir: Path | None = None) -> bool:
    """Installs the layer unless it already holds these pins; True when it (re)built."""
    layer_dir = layer_dir or LAYER_DIR
    lines = requirement_lines()
    expected = digest(lines)
    stamp = layer_dir / STAMP_NAME
    if stamp.is_file() and stamp.read_text().strip() == expected and (layer_dir / "python").is_dir():
        return False
    layer_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{layer_dir.name}-", dir=layer_dir.parent))
    try:
        pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile", "--no-deps"]
        subprocess.run([*pip, *PLATFORM_ARGS, "--target", str(scratch / "python"), *lines], check=True)
        shutil.rmtree(scratch / "python" / "bin", ignore_errors=True)
        (scratch / STAMP_NAME).write_text(expected + "\n")
        if layer_dir.exists():
            shutil.rmtree(layer_dir)
        scratch.rename(layer_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--print", action="store_true", help="print the requirements, build nothing")
    args = parser.parse_args(argv)
    try:
        if args.print:
            print("\n".join(requirement_lines()))
            return 0
        rebuilt = build()
    except LayerNotBuilt as error:
        print(f"infra.layer: {error}", file=sys.stderr)
        return 1
    print(f"{LAYER_DIR}: {'built' if rebuilt else 'up to date'} ({len(requirement_lines())} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
