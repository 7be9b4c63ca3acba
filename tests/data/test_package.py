import json
import subprocess
import sys


def test_prompt_sets_import_does_not_pull_in_torch():
    code = "import sys, moksori.data.prompt_sets; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_public_names_resolve_lazily_to_their_modules():
    """Each name in ``moksori.data.__all__`` is imported on first use from the module the
    package docstring names, is the very object that module defines, and is cached."""
    code = """
import importlib, json, sys
import moksori.data as data
out = {"torch_before": "torch" in sys.modules, "names": {}}
for name in data.__all__:
    value = getattr(data, name)
    home = data._EXPORTS[name]
    module = importlib.import_module(f"moksori.data.{home}")
    out["names"][name] = [home, value is getattr(module, name), getattr(value, "__module__", None),
                          name in vars(data)]
try:
    data.no_such_name
except AttributeError as error:
    out["missing"] = str(error)
out["dir"] = set(data.__all__) <= set(dir(data))
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out = json.loads(result.stdout)
    assert out["torch_before"] is False
    assert set(out["names"]) == {
        "DatasetFormatError", "LengthBucketSampler", "MalformedLineError", "PreprocessConfig",
        "PreprocessReport", "TTSDataset", "Utterance", "collate_tts", "detect_format",
        "format_report", "make_sample_dataset", "preprocess_dataset", "read_dataset",
        "read_manifest", "scan_dataset", "split_train_val",
    }  # fmt: skip
    for name, (home, same_object, defined_in, cached) in out["names"].items():
        assert same_object, name
        assert defined_in == f"moksori.data.{home}", name
        assert cached, name
    assert out["missing"] == "module 'moksori.data' has no attribute 'no_such_name'"
    assert out["dir"] is True

