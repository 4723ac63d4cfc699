"""A job's files, carried back to the sweep's process with the job's return value.

A launcher that runs jobs on other machines (Ray on a cloud cluster, where nodes often share
no file system) leaves each job's results on its node: the sweep's process would find no
result and report nothing, though every trial ran. So a job started by another launcher packs
its folder (results, supervisor records, logs, its ``trial.yaml`` and ``.hydra/``) into the
value it returns, and the sweep's process writes whatever of it is missing under the sweep
folder. On a shared file system every file is already there and nothing is written; a file
that exists is never replaced, so nothing recorded is lost.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

FILE_LIMIT = 16 * 2**20  # bytes; larger files (a loader's cache, a long trace) stay on the node, named in the log
# bytes a job carries back in all: under the 75 MB object store hydra-ray-launcher gives a Ray cluster it starts
JOB_LIMIT = 48 * 2**20


def pack(job_dir: Path, root: Path) -> tuple[dict[str, bytes], list[str]]:
    """Every file under ``job_dir``, by its path relative to ``root``, up to the limits.

    Returns:
        (path -> content, the paths left out for their size).
    """
    files: dict[str, bytes] = {}
    left: list[str] = []
    total = 0
    for path in sorted(p for p in job_dir.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(root).as_posix()
        size = path.stat().st_size
        if size > FILE_LIMIT or total + size > JOB_LIMIT:
            left.append(relative)
            continue
        files[relative] = path.read_bytes()
        total += size
    return files, left


def unpack(files: dict[str, bytes], root: Path) -> list[str]:
    """Write each of ``files`` that ``root`` lacks; return the paths written.

    A path that would leave ``root`` (absolute, or through ``..``) is refused: the files come
    from another process, perhaps another machine.
    """
    written = []
    for relative, data in sorted(files.items()):
        parts = PurePosixPath(relative).parts
        if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
            raise ValueError(f"a job sent back {relative!r}, a path outside its sweep folder")
        target = root.joinpath(*parts)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)  # whole or absent, as the trial's own files are
        written.append(relative)
    return written
