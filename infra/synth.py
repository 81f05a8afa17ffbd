"""Synthesizes the app into ``cdk.out`` (once per change of its sources) and regenerates ``asl/``.

``python -m infra.synth``          synth if sources changed, write asl/
``python -m infra.synth --check``  synth into a scratch folder and fail if asl/ differs (drift check)
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from workflows.asl import ASL_DIR, render_all

ROOT = Path(__file__).resolve().parents[1]
# TASKRAIL_CDK_OUT lets parallel checkouts or workers synthesize into their own folder.
CDK_OUT = Path(os.environ.get("TASKRAIL_CDK_OUT") or ROOT / "cdk.out")
SOURCES = ("infra", "workflows", "lambdas")
STAMP = ".taskrail-sources.sha256"
STACK_NAME = os.environ.get("TASKRAIL_STACK_NAME", "taskrail")


def sources_digest() -> str:
    digest = hashlib.sha256()
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def synth(outdir: Path | None = None, *, force: bool = False) -> Path:
    """Returns the template path; skips the (slow) synth when the sources did not change. The folder is
    :data:`CDK_OUT` unless given (read when called, so that one process can point every reader elsewhere)."""
    outdir = outdir or CDK_OUT
    template_path = outdir / f"{STACK_NAME}.template.json"
    stamp = outdir / STAMP
    digest = sources_digest()
    if not force and template_path.exists() and stamp.exists() and stamp.read_text() == digest:
        return template_path
    from infra.app import build_app

    build_app(str(outdir)).synth()
    stamp.write_text(digest)
    return template_path


def load_template(outdir: Path | None = None) -> dict[str, Any]:
    return json.loads(synth(outdir).read_text())


def write_asl(template: dict[str, Any]) -> list[Path]:
    ASL_DIR.mkdir(exist_ok=True)
    written = []
    for path, text in render_all(template).items():
        path.write_text(text)
        written.append(path)
    return written


def asl_drift(template: dict[str, Any]) -> list[str]:
    """Names of asl/ files that differ from what the workflow code generates (empty when in step)."""
    expected = render_all(template)
    stale = [p.name for p, text in expected.items() if not p.exists() or p.read_text() != text]
    extra = [p.name for p in ASL_DIR.glob("*.asl.json") if p not in expected]
    return stale + extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if asl/ is stale")
    parser.add_argument("--force", action="store_true", help="synth even if sources did not change")
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as scratch:
            drift = asl_drift(json.loads(synth(Path(scratch), force=True).read_text()))
        if drift:
            print(f"asl/ is stale: {', '.join(drift)}. Run `make asl` and commit the result.", file=sys.stderr)
            return 1
        print("asl/ matches the workflow code")
        return 0
    template = load_template() if not args.force else json.loads(synth(force=True).read_text())
    for path in write_asl(template):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
