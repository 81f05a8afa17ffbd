"""Synthesizes the app into ``cdk.out`` (once per change of its sources) and regenerates ``asl/``.

``python -m infra.synth``          synth if sources changed, write asl/
``python -m infra.synth --check``  synth into a scratch folder and fail if asl/ differs (drift check)

asl/ holds both lifecycle types' definitions: the EXPRESS variant (``-c lifecycleType=EXPRESS``) is synthesized into
its own folder beside the default one (:func:`cdk_out_for`). ``TASKRAIL_LIFECYCLE_TYPE=EXPRESS`` makes EXPRESS the
default type, the one the local stack runs (``TASKRAIL_LIFECYCLE_TYPE=EXPRESS make demo``).
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from workflows import lifecycle_type as lifecycle_types
from workflows.asl import ASL_DIR, render_all, state_machine_type, state_machines
from workflows.lifecycle_type import LIFECYCLE_TYPES, STANDARD

ROOT = Path(__file__).resolve().parents[1]
# TASKRAIL_CDK_OUT lets parallel checkouts or workers synthesize into their own folder.
CDK_OUT = Path(os.environ.get("TASKRAIL_CDK_OUT") or ROOT / "cdk.out")
SOURCES = ("infra", "workflows", "lambdas")
STAMP = ".taskrail-sources.sha256"
STACK_NAME = os.environ.get("TASKRAIL_STACK_NAME", "taskrail")
DEFAULT_LIFECYCLE_TYPE = lifecycle_types.parse(os.environ.get("TASKRAIL_LIFECYCLE_TYPE"))


def sources_digest() -> str:
    """The sources' content, and the dependency layer's pins stamp (infra/layer.py): a layer rebuilt for new pins by
    `make setup` changes the template's layer asset, so it re-synthesizes too."""
    from infra.layer import LAYER_DIR, STAMP_NAME

    digest = hashlib.sha256()
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    layer_stamp = LAYER_DIR / STAMP_NAME
    digest.update(layer_stamp.read_bytes() if layer_stamp.exists() else b"no layer built")
    return digest.hexdigest()


def cdk_out_for(lifecycle_type: str, base: Path | None = None) -> Path:
    """The default type's folder is ``base`` (:data:`CDK_OUT`); the other's is ``<base>-<type>`` beside it."""
    base = base or CDK_OUT
    return base if lifecycle_type == DEFAULT_LIFECYCLE_TYPE else base.with_name(f"{base.name}-{lifecycle_type.lower()}")


def synth(outdir: Path | None = None, *, force: bool = False, lifecycle_type: str = DEFAULT_LIFECYCLE_TYPE) -> Path:
    """Returns the template path; skips the (slow) synth when the sources did not change. The folder is
    :data:`CDK_OUT` (or its EXPRESS sibling) unless given (read when called, so that one process can point every
    reader elsewhere)."""
    outdir = outdir or cdk_out_for(lifecycle_type)
    outdir.mkdir(parents=True, exist_ok=True)
    template_path = outdir / f"{STACK_NAME}.template.json"
    stamp = outdir / STAMP
    digest = f"{sources_digest()} {lifecycle_type}"
    if not force and template_path.exists() and stamp.exists() and stamp.read_text() == digest:
        return template_path
    from infra.app import build_app

    build_app(str(outdir), lifecycle_type=lifecycle_type).synth()
    stamp.write_text(digest)
    return template_path


def load_template(outdir: Path | None = None, *, lifecycle_type: str = DEFAULT_LIFECYCLE_TYPE) -> dict[str, Any]:
    return json.loads(synth(outdir, lifecycle_type=lifecycle_type).read_text())


def render_variants(templates: list[dict[str, Any]]) -> dict[Path, str]:
    """Every asl/ file of the templates (one per lifecycle type); a workflow both have is the same in both."""
    rendered: dict[Path, str] = {}
    for template in templates:
        for path, text in render_all(template).items():
            if rendered.setdefault(path, text) != text:
                raise ValueError(f"{path.name} differs between the lifecycle types' templates")
    return rendered


def write_asl(*templates: dict[str, Any]) -> list[Path]:
    ASL_DIR.mkdir(exist_ok=True)
    written = []
    for path, text in render_variants(list(templates)).items():
        path.write_text(text)
        written.append(path)
    return written


def asl_drift(*templates: dict[str, Any]) -> list[str]:
    """Names of asl/ files that differ from what the workflow code generates (empty when in step). A lifecycle type
    none of the templates is of is not checked (``asl_drift(template)`` checks the default variant only)."""
    expected = render_variants(list(templates))
    given = {state_machine_type(t, k) for t in templates for k in state_machines(t)}
    unchecked = [f".{kind.lower()}.asl.json" for kind in LIFECYCLE_TYPES if kind != STANDARD and kind not in given]
    stale = [p.name for p, text in expected.items() if not p.exists() or p.read_text() != text]
    extra = [p.name for p in ASL_DIR.glob("*.asl.json") if p not in expected and not p.name.endswith(tuple(unchecked))]
    return stale + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if asl/ is stale")
    parser.add_argument("--force", action="store_true", help="synth even if sources did not change")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as scratch:
            drift = asl_drift(
                *(
                    json.loads(synth(Path(scratch) / kind, force=True, lifecycle_type=kind).read_text())
                    for kind in LIFECYCLE_TYPES
                )
            )
        if drift:
            print(f"asl/ is stale: {', '.join(drift)}. Run `make asl` and commit the result.", file=sys.stderr)
            return 1
        print("asl/ matches the workflow code")
        return 0
    templates = [json.loads(synth(force=args.force, lifecycle_type=kind).read_text()) for kind in LIFECYCLE_TYPES]
    for path in write_asl(*templates):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
