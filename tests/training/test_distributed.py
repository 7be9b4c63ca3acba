"""Two-process DDP on CPU (gloo), started the way torchrun starts ranks: RANK/WORLD_SIZE env."""

import json
import os
import socket
import subprocess
import sys


from moksori.training import load_checkpoint

WORKER = r"""
import json, sys, torch
torch.set_num_threads(1)
from moksori.training.loop import Trainer
from moksori.training.recipe import load_recipe
recipe = load_recipe(json.loads(sys.argv[1]))
trainer = Trainer(recipe, max_steps=3)
trainer.run()
state = {k: v.sum().item() for k, v in trainer.task.inference_module().state_dict().items()}
json.dump(state, open(sys.argv[2], "w"))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_on_cpu(make_recipe, tmp_path):
    recipe = make_recipe("glowtts", tmp_path / "run", eval_interval=3)
    recipe.data.batch_size = 2
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        out = tmp_path / f"rank{rank}.json"
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(recipe.to_dict()), str(out)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [p.communicate(timeout=180)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    # DDP averaged the gradients: both ranks hold the same weights after 3 steps.
    assert rank0.keys() == rank1.keys()
    assert all(abs(rank0[k] - rank1[k]) <= 1e-5 * max(1.0, abs(rank0[k])) for k in rank0)
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["step"] == 3
    assert all(abs(v.sum().item() - rank0[k]) <= 1e-5 * max(1.0, abs(rank0[k])) for k, v in checkpoint["model"].items())
    # Only rank 0 wrote: one metrics file, one line per step.
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines if '"train"' in line] == [1, 2, 3]


def test_two_process_ddp_flowtron_curriculum(make_recipe, tmp_path):
    """Flowtron's first steps leave the second flow unused: DDP is told to expect it."""
    recipe = make_recipe("flowtron", tmp_path / "run", eval_interval=3, single_flow_steps=2)
    recipe.data.batch_size = 2
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        out = tmp_path / f"rank{rank}.json"
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(recipe.to_dict()), str(out)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outputs = [p.communicate(timeout=180)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert all(abs(rank0[k] - rank1[k]) <= 1e-5 * max(1.0, abs(rank0[k])) for k in rank0)
    assert load_checkpoint(tmp_path / "run")["step"] == 3
