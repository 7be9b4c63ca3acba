import subprocess
import sys


def test_prompt_sets_import_does_not_pull_in_torch():
    code = "import sys, moksori.data.prompt_sets; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_public_names_resolve():
    import moksori.data as data

    for name in data.__all__:
        assert getattr(data, name) is not None
    assert data.read_dataset.__module__ == "moksori.data.readers"
