import subprocess
import sys
from pathlib import Path

from moksori.store import database


def test_store_does_not_pull_in_torch() -> None:
    # The server opens the database at start-up; that alone must not load torch.
    code = "import sys, moksori.store.keys, moksori.store.accounts; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_migrations_are_inside_the_package() -> None:
    migrations = Path(database.__file__).parent / "migrations"
    assert migrations == database.MIGRATIONS_DIR
    assert (migrations / "env.py").is_file() and (migrations / "script.py.mako").is_file()
    # Packages (with __init__.py), so that setuptools ships the revision files.
    assert (migrations / "__init__.py").is_file() and (
        migrations / "versions" / "__init__.py"
    ).is_file()
    assert (migrations / "versions" / "0001_initial.py").is_file()
