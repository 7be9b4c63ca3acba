import torch

# Tests run two per machine (pytest -n 2 on 2 cores): one intra-op thread each avoids oversubscription.
torch.set_num_threads(1)
