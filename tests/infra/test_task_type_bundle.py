"""Task types are discovered inside the functions' bundle as CDK ships it, not only from the source tree."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from task_types import known_types
from tests.infra.test_template import resources_of


def function_assets(template: dict[str, Any], template_path: Path) -> dict[str, Path]:
    """Function logical id → the staged asset folder its Code zip is made of (cdk.out/asset.<hash>)."""
    manifest = json.loads((template_path.parent / f"{template_path.name.split('.')[0]}.assets.json").read_text())
    folders = {}
    for logical_id, function in resources_of(template, "AWS::Lambda::Function").items():
        asset_hash = function["Properties"]["Code"]["S3Key"].removesuffix(".zip")
        source = manifest["files"][asset_hash]["source"]
        assert source["packaging"] == "zip", logical_id
        folders[logical_id] = template_path.parent / source["path"]
    return folders


def test_the_bundle_discovers_the_same_types_as_the_source_tree(template, template_path, tmp_path):
    # Given the ProcessTask bundle, zipped and unpacked as Lambda does into its task root
    (asset,) = {
        folder for logical_id, folder in function_assets(template, template_path).items() if "Process" in logical_id
    }
    archive = shutil.make_archive(str(tmp_path / "bundle"), "zip", asset)
    task_root = tmp_path / "var-task"
    shutil.unpack_archive(archive, task_root)

    # When Python imports the registry from the task root alone (as the runtime does: LAMBDA_TASK_ROOT on the path)
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, task_types; print(json.dumps([task_types.__file__, task_types.known_types()]))",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(task_root)},
        capture_output=True,
        text=True,
        check=False,
    )

    # Then it finds every type the source tree has, from the bundle's own files
    assert found.returncode == 0, found.stderr
    print("bundle types:", found.stdout.strip())
    package_file, types = json.loads(found.stdout)
    assert Path(package_file).is_relative_to(task_root)
    assert types == known_types()
    assert len(known_types()) >= 6
