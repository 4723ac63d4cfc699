"""Thread pools set deliberately and recorded, so they never differ silently between rows.

TensorFlow's pools can only be sized before its first op runs, so :func:`configure` is
called right after a trial imports its framework and before the loader is built.
DataLoader workers set their own torch threads (see the torch loader).
"""

from __future__ import annotations

import os
import sys

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")


def configure(conf) -> None:
    """Apply ``threads.*`` to whichever frameworks this process has imported."""
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        if conf.tf_inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(conf.tf_inter_op)
        if conf.tf_intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(conf.tf_intra_op)
    if "torch" in sys.modules and conf.torch:
        sys.modules["torch"].set_num_threads(conf.torch)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(conf.opencv)


def describe(conf) -> dict:
    """The thread settings in force, as asked and as the frameworks report them."""
    record: dict = {"asked": {k: getattr(conf, k) for k in ("tf_inter_op", "tf_intra_op", "torch", "opencv")}}
    record["env"] = {k: os.environ.get(k) for k in ENV_VARS}
    record["cpu_count"] = os.cpu_count()
    if "tensorflow" in sys.modules:
        threading = sys.modules["tensorflow"].config.threading
        record["tensorflow"] = {
            "inter_op": threading.get_inter_op_parallelism_threads() or "default (all cores)",
            "intra_op": threading.get_intra_op_parallelism_threads() or "default (all cores)",
        }
    if "torch" in sys.modules:
        record["torch"] = {"num_threads": sys.modules["torch"].get_num_threads()}
    if "cv2" in sys.modules:
        record["opencv"] = {"num_threads": sys.modules["cv2"].getNumThreads()}
    return record
