"""Shared test settings."""

import torch

# The networks in the tests use matrices of width 10 or less, so extra threads
# only add synchronisation. On a loaded 2-core machine two threads were
# measured about 25 times slower than one.
torch.set_num_threads(1)
