"""`agomni validate MANIFEST`: print one line per problem and exit 2, or a one-line summary and exit 0."""

from __future__ import annotations

import argparse

from ..errors import ManifestError
from .load import load_manifest


def cli_validate(args: argparse.Namespace) -> int:
    """Check `args.manifest` with files. Problems go to stdout, one per line ("path:line: id 'x': field:
    message"), exit code 2; a valid manifest prints "<path>: N items OK (tasks: t2a=2, tts=1)", exit 0."""
    try:
        manifest = load_manifest(args.manifest)
    except ManifestError as err:
        for line in err.problems:
            print(line)
        return err.exit_code
    tasks = ", ".join(f"{task}={count}" for task, count in manifest.task_counts().items())
    print(f"{args.manifest}: {len(manifest)} items OK (tasks: {tasks})")
    return 0
