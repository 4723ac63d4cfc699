"""The contract suite runs every family in one process, which trials never do.

With TensorFlow 2.21 loaded first, importing torchvision segfaults (seen with
torch 2.12.1 / torchvision 0.27.1); loaded in the other order, both work. Trials are
separate processes and import one framework each, so only this suite needs the order.
"""

import torch  # noqa: F401
import torchvision  # noqa: F401
